"""A circuit breaker per venue, in Redis, shared by every process.

States: ``closed`` (calls go through), ``open`` (calls fail fast until the cool-down
ends), ``half_open`` (after the cool-down exactly one caller, the probe, goes through;
its success closes the breaker, its failure opens it again). It opens after
``threshold`` failures (timeouts, 5xx, dropped connections; never a definite
rejection) within ``window_s`` seconds, or at once for a ban (HTTP 418) until the ban
ends. Every transition is one atomic Lua call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

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

# KEYS[1] breaker hash. ARGV: now, threshold, window ms, cool-down ms, force (1 = open now).
# Returns the new state.
_FAILURE = """
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local force = tonumber(ARGV[5])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local since = tonumber(redis.call('HGET', KEYS[1], 'window_start') or '0')
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if now - since > window then failures = 0; since = now end
failures = failures + 1
redis.call('HSET', KEYS[1], 'failures', failures, 'window_start', since, 'last_failure', now)
if force == 1 or state == 'half_open' or failures >= threshold then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + cooldown,
             'opened_at', now, 'probe_until', 0)
  return 'open'
end
return state
"""

# KEYS[1] breaker hash. Returns the previous state.
_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state ~= 'closed' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'probe_until', 0)
end
return state
"""


@dataclass(frozen=True)
class BreakerConfig:
    threshold: int = 5  # failures within the window that open it
    window_s: float = 10.0
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
        allowed, _state = self._allow(
            keys=[self.key], args=[self._now(), int(self.config.probe_timeout_s * 1000)]
        )
        return bool(int(allowed))

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
            ],
        )
        return state.decode() if isinstance(state, bytes) else str(state)

    def record_success(self) -> str:
        """Close the breaker; returns the state it was in (so callers can tell it just
        came back and reconcile)."""
        previous = self._success(keys=[self.key])
        return previous.decode() if isinstance(previous, bytes) else str(previous)

    def state(self) -> dict[str, Any]:
        raw = {k.decode(): v.decode() for k, v in self.redis.hgetall(self.key).items()}
        state = raw.get("state", CLOSED)
        open_until = int(raw.get("open_until", 0) or 0)
        if state == OPEN and self._now() >= open_until:
            state = HALF_OPEN  # the next call will be the probe
        return {
            "state": state,
            "failures": int(raw.get("failures", 0) or 0),
            "open_until": open_until / 1000 if open_until else None,
        }

    def reset(self) -> None:
        self.redis.delete(self.key)
