"""A circuit breaker per venue, in Redis, shared by every process.

States: ``closed`` (calls go through), ``open`` (calls fail fast until the cool-down
ends), ``half_open`` (after the cool-down exactly one caller, the probe, goes through;
its success closes the breaker, its failure opens it again). Failures are timeouts,
5xx and dropped connections, never a definite rejection. It opens when

* within a window of ``window_s`` seconds at least ``threshold`` calls failed *and*
  they are at least ``failure_ratio`` of the calls made (counting the previous window,
  weighted by how much of it still overlaps the last ``window_s`` seconds: a fresh
  window's first few calls are not judged alone), or
* ``streak`` calls in a row failed (a venue that went down after a busy, healthy
  window: its successes must not hold the breaker closed until the window ends), or
* at once for a ban (HTTP 418), until the ban ends.

Counting successes matters: a busy venue answering the odd 5xx (0.5% of 100 calls a
second is 5 failures in 10 s) is up, not down. Every transition is one atomic Lua call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
UNKNOWN = "unknown"  # state() only: Redis could not be read

# KEYS[1] breaker hash. ARGV: now (ms). Returns {allowed (0/1), state}.
_ALLOW = """
local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, state} end
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if now < open_until then return {0, 'open'} end
-- cool-down over: one probe at a time (a probe that never reports back expires)
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then return {0, 'half_open'} end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[2]))
return {1, 'half_open'}
"""

# The window's counts, rolled over: a window that ended less than a window ago becomes
# the previous one, weighted down as the current one fills (a sliding estimate, so a
# fresh window's first calls are not judged alone). Shared by _FAILURE and _SUCCESS.
_ROLL = """
local h = redis.call('HMGET', KEYS[1], 'state', 'window_start', 'failures', 'successes',
                     'prev_failures', 'prev_successes', 'streak')
local state = h[1] or 'closed'
local since = tonumber(h[2] or '0')
local f = tonumber(h[3] or '0')
local s = tonumber(h[4] or '0')
local pf = tonumber(h[5] or '0')
local ps = tonumber(h[6] or '0')
local streak = tonumber(h[7] or '0')
if now - since > window then
  if now - since > 2 * window then pf = 0; ps = 0 else pf = f; ps = s end
  f = 0; s = 0; since = now
end
"""

# KEYS[1] breaker hash. ARGV: now, threshold, window ms, cool-down ms, force (1 = open
# now), failure ratio, streak. Returns the new state.
_FAILURE = (
    """
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local force = tonumber(ARGV[5])
local ratio = tonumber(ARGV[6])
local streak_max = tonumber(ARGV[7])
"""
    + _ROLL
    + """
f = f + 1
streak = streak + 1
redis.call('HSET', KEYS[1], 'failures', f, 'successes', s, 'prev_failures', pf,
           'prev_successes', ps, 'streak', streak, 'window_start', since, 'last_failure', now)
local weight = 1 - (now - since) / window
if weight < 0 then weight = 0 end
local failed = f + pf * weight
local calls = f + s + (pf + ps) * weight
local tripped = (f >= threshold and failed >= ratio * calls) or streak >= streak_max
if force == 1 or state == 'half_open' or tripped then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + cooldown,
             'opened_at', now, 'probe_until', 0)
  return 'open'
end
return state
"""
)

# KEYS[1] breaker hash. ARGV: now, window ms. Counts the success (closed), or closes the
# breaker with fresh counts. Returns the previous state.
_SUCCESS = (
    """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
"""
    + _ROLL
    + """
if state ~= 'closed' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'successes', 0,
             'prev_failures', 0, 'prev_successes', 0, 'streak', 0,
             'window_start', now, 'probe_until', 0)
  return state
end
redis.call('HSET', KEYS[1], 'failures', f, 'successes', s + 1, 'prev_failures', pf,
           'prev_successes', ps, 'streak', 0, 'window_start', since)
return state
"""
)


@dataclass(frozen=True)
class BreakerConfig:
    threshold: int = 5  # failures within the window that open it...
    window_s: float = 10.0
    failure_ratio: float = 0.5  # ...when they are at least this share of its calls
    streak: int = 10  # or this many failures in a row
    cooldown_s: float = 5.0  # open -> half-open after this
    probe_timeout_s: float = 10.0  # a probe that never reports back frees the slot


class CircuitBreaker:
    def __init__(self, redis: Any, venue: str, config: BreakerConfig | None = None) -> None:
        self.redis = redis
        self.venue = venue
        self.config = config or BreakerConfig()
        self.key = f"oms:breaker:{venue}"
        self._allow = redis.register_script(_ALLOW)
        self._failure = redis.register_script(_FAILURE)
        self._success = redis.register_script(_SUCCESS)

    @staticmethod
    def _now() -> int:
        return int(time.time() * 1000)

    def allow(self) -> bool:
        keys, args = self.allow_call()
        return self.allowed_from(self._allow(keys=keys, args=args))

    def allow_call(self) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of ``_ALLOW`` (the guard runs it inside a larger script)."""
        return [self.key], [self._now(), int(self.config.probe_timeout_s * 1000)]

    @staticmethod
    def allowed_from(reply: Any) -> bool:
        return bool(int(reply[0]))

    def record_failure(self, *, open_for_s: float | None = None) -> str:
        """Count a failure; ``open_for_s`` opens it at once for that long (a ban)."""
        cooldown = open_for_s if open_for_s is not None else self.config.cooldown_s
        state = self._failure(
            keys=[self.key],
            args=[
                self._now(),
                self.config.threshold,
                int(self.config.window_s * 1000),
                int(cooldown * 1000),
                1 if open_for_s is not None else 0,
                self.config.failure_ratio,
                self.config.streak,
            ],
        )
        return self.state_from(state)

    def record_success(self) -> str:
        """Count a success (closing the breaker if it was not closed); returns the state
        it was in (so callers can tell it just came back and reconcile)."""
        keys, args = self.success_call()
        return self.state_from(self._success(keys=keys, args=args))

    def success_call(self) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of ``_SUCCESS``."""
        return [self.key], [self._now(), int(self.config.window_s * 1000)]

    @staticmethod
    def state_from(reply: Any) -> str:
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    def state(self) -> dict[str, Any]:
        """The breaker as readers see it. Redis unreachable: ``unknown`` (not ``open``:
        readers such as routing and the API's fail-fast let orders through, and the
        worker asks the breaker again before it sends anything)."""
        try:
            items = self.redis.hgetall(self.key).items()
        except RedisError:
            log.warning("breaker of %s unreadable (Redis down)", self.venue)
            return {"state": UNKNOWN, "failures": 0, "streak": 0, "open_until": None}
        raw = {k.decode(): v.decode() for k, v in items}
        state = raw.get("state", CLOSED)
        open_until = int(raw.get("open_until", 0) or 0)
        if state == OPEN and self._now() >= open_until:
            state = HALF_OPEN  # the next call will be the probe
        return {
            "state": state,
            "failures": int(raw.get("failures", 0) or 0),
            "streak": int(raw.get("streak", 0) or 0),
            "open_until": open_until / 1000 if open_until else None,
        }

    def reset(self) -> None:
        self.redis.delete(self.key)


def is_open(redis: Any, venue: str) -> bool:
    """Whether new orders to ``venue`` should fail fast now (routing, the API). Tolerates
    Redis being down (not open: the worker asks the breaker again before sending)."""
    return venue in open_venues(redis, [venue])


def open_venues(redis: Any, venues: list[str]) -> set[str]:
    """The venues of ``venues`` whose breaker is open now: one round trip for all. Redis
    unreachable: none (as ``is_open``)."""
    if not venues:
        return set()
    try:
        pipe = redis.pipeline(transaction=False)
        for venue in venues:
            pipe.hmget(f"oms:breaker:{venue}", "state", "open_until")
        replies = pipe.execute()
    except RedisError:
        log.warning("breakers unreadable (Redis down)")
        return set()
    now = CircuitBreaker._now()
    out = set()
    for venue, (state, open_until) in zip(venues, replies, strict=True):
        if state is not None and state.decode() == OPEN and now < int(open_until or 0):
            out.add(venue)
    return out
