"""Cluster-wide venue rate limits: token buckets in Redis, shared by every worker.

Each venue has weight pools (for Binance-style venues: request weight per minute and
orders per 10 seconds). Acquiring is one atomic Lua call (one round trip, shared with the
circuit breaker's check by the guard) that refills the call's buckets for the time
passed and takes its cost from all of them, or answers how long to wait. A share
of every pool is reserved for cancels: other requests may not take the last
``reserve`` tokens, so a flood of new orders never starves the cancels.

A 429 with ``Retry-After`` pauses the venue for every worker (``pause``); the venue's
used-weight header corrects our count (``observe_used``) when it has counted more than we
did (another client on the same key or IP, a restart that lost our state).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# KEYS[1] the venue's pause key, KEYS[2..] the call's pool buckets. ARGV[1] now (ms),
# then per pool: capacity, refill per second, cost, reserve. Takes the cost from every
# pool or from none (all or nothing, so a pool that says wait wastes nothing of the
# others). Returns 0 when taken, else the milliseconds to wait (a pause after a 429
# counts as a wait).
_ACQUIRE = """
local now = tonumber(ARGV[1])
local paused_until = tonumber(redis.call('GET', KEYS[1]) or '0') * 1000
if paused_until > now then return math.ceil(paused_until - now) end
local tokens, stamps, wait = {}, {}, 0
for i = 2, #KEYS do
  local a = 2 + (i - 2) * 4
  local capacity, rate = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local cost, reserve = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local t, ts = tonumber(state[1]), tonumber(state[2])
  if t == nil then t = capacity; ts = now end
  if now > ts then
    t = math.min(capacity, t + (now - ts) * rate / 1000.0)
    ts = now
  end
  if t - cost < reserve then
    wait = math.max(wait, math.ceil((cost + reserve - t) * 1000.0 / rate))
  end
  tokens[i], stamps[i] = t, ts
end
for i = 2, #KEYS do
  local a = 2 + (i - 2) * 4
  local capacity, rate, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local t = tokens[i]
  if wait == 0 then t = t - cost end
  redis.call('HSET', KEYS[i], 'tokens', t, 'ts', stamps[i])
  redis.call('PEXPIRE', KEYS[i], math.ceil(capacity * 1000.0 / rate) + 60000)
end
return wait
"""

# KEYS[1] bucket hash. ARGV: capacity, used (as reported by the venue), now (ms).
_OBSERVE = """
local capacity = tonumber(ARGV[1])
local used = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
local venue_left = capacity - used
if tokens == nil or venue_left < tokens then
  redis.call('HSET', KEYS[1], 'tokens', venue_left, 'ts', now)
end
return 0
"""


@dataclass(frozen=True)
class Pool:
    """A token bucket: ``capacity`` tokens refilled evenly over ``window_s`` seconds."""

    name: str
    capacity: int
    window_s: float
    cancel_reserve: float = 0.1  # share of the pool only cancels may use

    @property
    def rate_per_s(self) -> float:
        return self.capacity / self.window_s

    @property
    def reserve(self) -> float:
        return self.capacity * self.cancel_reserve


# Binance spot's published limits (REQUEST_WEIGHT 6000/min, ORDERS 100/10s), with a
# margin so we stop before the venue does.
BINANCE_POOLS = (Pool("weight", 5400, 60.0), Pool("orders", 90, 10.0))

# Request weights of the calls the adapter makes (Binance spot weights).
WEIGHTS: dict[str, dict[str, int]] = {
    "submit_order": {"weight": 1, "orders": 1},
    "cancel_order": {"weight": 1},
    "amend_order": {"weight": 2, "orders": 1},
    "fetch_order": {"weight": 4},
    "fetch_open_orders": {"weight": 6},
    "fetch_trades": {"weight": 20},
    "fetch_order_book": {"weight": 5},
    "fetch_balances": {"weight": 20},
    "cancel_all": {"weight": 1},
}


class RateLimiter:
    def __init__(self, redis: Any, venue: str, pools: tuple[Pool, ...] = BINANCE_POOLS) -> None:
        self.redis = redis
        self.venue = venue
        self.pools = {p.name: p for p in pools}
        self._acquire = redis.register_script(_ACQUIRE)
        self._observe = redis.register_script(_OBSERVE)

    def _key(self, pool: str) -> str:
        return f"oms:rl:{self.venue}:{pool}"

    @property
    def pause_key(self) -> str:
        return f"oms:rl:{self.venue}:paused_until"

    def paused_for(self) -> float:
        """Seconds left of a venue-wide pause (after a 429), 0 if none."""
        raw = self.redis.get(self.pause_key)
        return max(0.0, float(raw) - time.time()) if raw else 0.0

    def pause(self, seconds: float) -> None:
        until = time.time() + seconds
        self.redis.set(self.pause_key, until, px=int(seconds * 1000) + 1000)

    def try_acquire(self, call: str, *, cancel: bool = False) -> float:
        """Take the call's cost from every pool (all or none, one round trip); 0.0 if
        done, else seconds to wait (also while the venue is paused after a 429)."""
        keys, args = self.acquire_call(call, cancel=cancel)
        return self.wait_from(self._acquire(keys=keys, args=args))

    def acquire_call(self, call: str, *, cancel: bool = False) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of ``_ACQUIRE`` for ``call`` (the guard runs it inside a larger
        script)."""
        keys = [self.pause_key]
        args: list[Any] = [int(time.time() * 1000)]
        for pool_name, cost in WEIGHTS.get(call, {"weight": 1}).items():
            pool = self.pools.get(pool_name)
            if pool is None:
                continue
            keys.append(self._key(pool_name))
            args += [pool.capacity, pool.rate_per_s, cost, 0 if cancel else pool.reserve]
        return keys, args

    @staticmethod
    def wait_from(reply: Any) -> float:
        return int(reply) / 1000.0

    def acquire(self, call: str, *, cancel: bool = False, max_wait: float = 2.0) -> float:
        """Block up to ``max_wait`` seconds for tokens; return 0.0 when acquired, else the
        wait the caller should schedule (it should retry later rather than sleep)."""
        deadline = time.monotonic() + max_wait
        while True:
            wait = self.try_acquire(call, cancel=cancel)
            if not wait:
                return 0.0
            if time.monotonic() + wait > deadline:
                return wait
            time.sleep(wait)

    def observe_used(self, used_weight: int | None) -> None:
        """Correct the weight pool from the venue's own count (X-MBX-USED-WEIGHT-1M)."""
        call = self.observe_call(used_weight)
        if call is not None:
            self._observe(keys=call[0], args=call[1])

    def observe_call(self, used_weight: int | None) -> tuple[list[str], list[Any]] | None:
        """KEYS and ARGV of ``_OBSERVE``; None when there is nothing to correct."""
        pool = self.pools.get("weight")
        if used_weight is None or pool is None:
            return None
        return [self._key("weight")], [pool.capacity, used_weight, int(time.time() * 1000)]

    def usage(self) -> dict[str, float]:
        """Share of each pool in use now (for the blotter and the API)."""
        out = {}
        for name, pool in self.pools.items():
            tokens = self.redis.hget(self._key(name), "tokens")
            used = pool.capacity - float(tokens) if tokens is not None else 0.0
            out[name] = round(max(0.0, used) / pool.capacity, 4)
        return out
