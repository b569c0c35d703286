"""Cluster-wide venue rate limits: token buckets in Redis, shared by every worker.

Each venue has weight pools (for Binance-style venues: request weight per minute and
orders per 10 seconds). Acquiring is one atomic Lua call (one round trip) that refills
the bucket for the time passed and takes the cost, or answers how long to wait. A share
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

# KEYS[1] bucket hash. ARGV: capacity, refill per second, cost, now (ms), reserve.
# Returns 0 when the tokens were taken, else the milliseconds to wait.
_ACQUIRE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local reserve = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = capacity; ts = now end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000.0)
  ts = now
end
local wait = 0
if tokens - cost >= reserve then
  tokens = tokens - cost
else
  wait = math.ceil((cost + reserve - tokens) * 1000.0 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', ts)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000.0 / rate) + 60000)
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
        """Take the call's cost from every pool; 0.0 if done, else seconds to wait.

        Pools are taken one by one; a pool that says wait does not refund the earlier
        ones (they refill quickly; keeping it one round trip per pool matters more)."""
        paused = self.paused_for()
        if paused:
            return paused
        now_ms = int(time.time() * 1000)
        for pool_name, cost in WEIGHTS.get(call, {"weight": 1}).items():
            pool = self.pools.get(pool_name)
            if pool is None:
                continue
            reserve = 0 if cancel else pool.reserve
            wait_ms = int(
                self._acquire(
                    keys=[self._key(pool_name)],
                    args=[pool.capacity, pool.rate_per_s, cost, now_ms, reserve],
                )
            )
            if wait_ms:
                return wait_ms / 1000.0
        return 0.0

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
        pool = self.pools.get("weight")
        if used_weight is None or pool is None:
            return
        self._observe(
            keys=[self._key("weight")],
            args=[pool.capacity, used_weight, int(time.time() * 1000)],
        )

    def usage(self) -> dict[str, float]:
        """Share of each pool in use now (for the blotter and the API)."""
        out = {}
        for name, pool in self.pools.items():
            tokens = self.redis.hget(self._key(name), "tokens")
            used = pool.capacity - float(tokens) if tokens is not None else 0.0
            out[name] = round(max(0.0, used) / pool.capacity, 4)
        return out
