"""Every venue call goes through the venue's cluster-wide rate limiter and circuit
breaker (both in Redis, shared by all workers).

``guarded_adapter(venue)`` wraps the venue's adapter (``venues.registry``):

* breaker open -> ``VenueUnavailable`` at once, nothing sent;
* no tokens within a short wait -> ``VenueRateLimited`` (nothing sent) with the wait;
* the venue says 429 -> the venue is paused for every worker for ``Retry-After``;
  418 (ban) -> the breaker opens until the ban ends;
* timeouts, 5xx, dropped connections count towards opening the breaker; any answer
  from the venue (even a rejection) counts as the venue being up;
* the venue's used-weight header corrects the shared weight count;
* every failed call is counted in ``/metrics`` by kind (``oms_venue_errors_total``), and
  the breaker opening is the alert ``breaker_open`` (``omsweb/alerts.py``).

When the breaker closes again after being open, ``on_recover(venue_id)`` runs (the
pipeline enqueues a reconciliation of that venue).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from redis.exceptions import RedisError

from omsweb import alerts, metrics
from venues.base import (
    Balance,
    Capabilities,
    OrderBook,
    OrderRequest,
    VenueAdapter,
    VenueInDoubt,
    VenueOrder,
    VenueOrderNotFound,
    VenueRateLimited,
    VenueRejected,
    VenueTrade,
    VenueUnavailable,
)
from venues.breaker import _ALLOW, _SUCCESS, CLOSED, BreakerConfig, CircuitBreaker
from venues.ratelimit import _ACQUIRE, _OBSERVE, BINANCE_POOLS, Pool, RateLimiter

log = logging.getLogger(__name__)

# The longest a call waits for rate-limit tokens before it is sent (else it is not sent
# and the caller retries later). It delays the signing of a request after the order was
# marked SUBMITTED, so the pipeline's re-send rule counts it (RESEND_MIN_AGE_S).
MAX_WAIT_S = 2.0


def _function(name: str, body: str) -> str:
    """A script's body as a Lua function of its own KEYS and ARGV."""
    return f"local function {name}(KEYS, ARGV)\n{body}\nend\n"


def _tail(table: str, start: int) -> str:
    return f"local {table}_t = {{}}\nfor i = {start}, #{table} do {table}_t[#{table}_t + 1] = {table}[i] end\n"


# The breaker's check, then (only if it lets the call through) the rate limiter's
# acquire: KEYS = breaker key, then the limiter's; ARGV = the breaker's two, then the
# limiter's. Returns {allowed, wait ms}.
_BEFORE = (
    _function("allow", _ALLOW)
    + _function("acquire", _ACQUIRE)
    + "local verdict = allow({KEYS[1]}, {ARGV[1], ARGV[2]})\n"
    + "if tonumber(verdict[1]) == 0 then return {0, 0} end\n"
    + _tail("KEYS", 2)
    + _tail("ARGV", 3)
    + "return {1, acquire(KEYS_t, ARGV_t)}\n"
)

# The breaker's success count, then the limiter's weight correction if given: KEYS =
# breaker key [, weight bucket]; ARGV = the breaker's two [, the limiter's three].
# Returns the breaker's previous state.
_AFTER = (
    _function("success", _SUCCESS)
    + _function("observe", _OBSERVE)
    + "local previous = success({KEYS[1]}, {ARGV[1], ARGV[2]})\n"
    + "if #KEYS > 1 then observe({KEYS[2]}, {ARGV[3], ARGV[4], ARGV[5]}) end\n"
    + "return previous\n"
)


def _best_effort(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a Redis (or broker) bookkeeping call; None if it failed."""
    try:
        return fn(*args, **kwargs)
    except Exception:  # Redis or the broker down: the venue's answer still counts
        log.warning("%s failed", getattr(fn, "__name__", fn), exc_info=True)
        return None


class GuardedAdapter(VenueAdapter):
    def __init__(
        self,
        inner: VenueAdapter,
        *,
        venue_id: int,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        on_recover: Callable[[int], None] | None = None,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.venue_id = venue_id
        self.limiter = limiter
        self.breaker = breaker
        self.on_recover = on_recover
        self.max_wait_s = max_wait_s
        self._local = threading.local()  # answers_counted_after(), per thread
        self._before_script = breaker.redis.register_script(_BEFORE)
        self._after_script = breaker.redis.register_script(_AFTER)

    def _before(self, call: str, *, cancel: bool) -> tuple[bool, float]:
        """Breaker check, then rate-limit tokens if allowed: one script, one round trip.
        Returns (allowed, seconds to wait)."""
        bkeys, bargs = self.breaker.allow_call()
        rkeys, rargs = self.limiter.acquire_call(call, cancel=cancel)
        allowed_flag, wait_ms = self._before_script(keys=[*bkeys, *rkeys], args=[*bargs, *rargs])
        allowed = bool(int(allowed_flag))
        wait = self.limiter.wait_from(wait_ms)
        if allowed and wait and wait <= self.max_wait_s:  # worth waiting for
            time.sleep(wait)
            wait = self.limiter.acquire(call, cancel=cancel, max_wait=self.max_wait_s - wait)
        return allowed, wait

    def _after(self, used_weight: int | None) -> str:
        """After an answer: count the success and correct the weight pool from the
        venue's count, in one round trip; the breaker's previous state."""
        keys, args = self.breaker.success_call()
        observe = self.limiter.observe_call(used_weight)
        if observe is not None:
            keys, args = [*keys, *observe[0]], [*args, *observe[1]]
        return self.breaker.state_from(self._after_script(keys=keys, args=args))

    def _error(self, kind: str) -> None:
        metrics.VENUE_ERRORS.labels(venue=self.name, kind=kind).inc()

    def _breaker_opened(self, reason: str) -> None:
        alerts.alert(alerts.BREAKER_OPEN, venue=self.name, reason=reason)

    def _call(self, call: str, fn: Callable[[], Any], *, cancel: bool = False) -> Any:
        try:
            allowed, wait = self._before(call, cancel=cancel)
        except RedisError as exc:
            self._error("limiter_down")
            # No shared limiter, no breaker: do not send (a venue-wide limit we cannot
            # see could get us banned); the caller retries later, nothing was sent.
            raise VenueRateLimited(
                f"{self.name}: rate limiter unavailable ({exc}); not sent", retry_after=1.0
            ) from exc
        if not allowed:
            self._error("breaker_open")
            raise VenueUnavailable(
                f"VENUE_UNAVAILABLE: {self.name} circuit breaker open", code="VENUE_UNAVAILABLE"
            )
        if wait:
            raise VenueRateLimited(
                f"{self.name} rate limit: retry in {wait:.2f}s (not sent)", retry_after=wait
            )
        # Bookkeeping after the venue answered must never turn its answer into an error
        # (the order would look in doubt although we hold the answer): best effort.
        try:
            result = fn()
        except VenueRateLimited as exc:
            self._error("rate_limited")
            retry = exc.retry_after or 1.0
            _best_effort(self.limiter.pause, retry)
            if exc.banned:
                _best_effort(self.breaker.record_failure, open_for_s=retry)
                self._breaker_opened(f"banned for {retry:.0f}s")
            _best_effort(self.limiter.observe_used, self.inner.last_used_weight())
            log.warning("%s: %s; paused %.1fs for every worker", self.name, exc.reason, retry)
            raise
        except VenueInDoubt:
            self._error("in_doubt")
            # read before counting (a round trip on failures only): a failed probe
            # re-opens an open breaker, which is no new alert
            before = _best_effort(self.breaker.state) or {}
            if _best_effort(self.breaker.record_failure) == "open":
                if before.get("state") == CLOSED:
                    self._breaker_opened("timeouts, 5xx or lost connections")
                _best_effort(_publish_status, self.venue_id, "circuit breaker open")
            _best_effort(self.limiter.observe_used, self.inner.last_used_weight())
            raise
        except Exception as exc:
            self._error(_error_kind(exc))
            self._venue_answered()  # a rejection or not-found is an answer: the venue is up
            raise
        else:
            self._venue_answered()
            return result

    def _venue_answered(self) -> None:
        used_weight = self.inner.last_used_weight()
        deferred: list[int | None] | None = getattr(self._local, "deferred", None)
        if deferred is not None:
            deferred.append(used_weight)
            return
        self._count_answer(used_weight)

    def _count_answer(self, used_weight: int | None) -> None:
        previous = _best_effort(self._after, used_weight)
        if previous not in (None, CLOSED) and self.on_recover is not None:
            log.info("%s is back (breaker was %s)", self.name, previous)
            _best_effort(self.on_recover, self.venue_id)

    @contextlib.contextmanager
    def answers_counted_after(self) -> Iterator[None]:
        """Within the block, a venue answer's bookkeeping (the breaker's success count,
        the weight correction) waits until the block ends: the caller applies the
        answer first, one Redis round trip sooner. Failures are still counted at once
        (they open the breaker). Nested in another such block: counted at the outer
        block's end."""
        if getattr(self._local, "deferred", None) is not None:
            yield
            return
        self._local.deferred = []
        try:
            yield
        finally:
            pending, self._local.deferred = self._local.deferred, None
            for used_weight in pending:
                self._count_answer(used_weight)

    # --- the contract, each call guarded ------------------------------------------------

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

    def submit_order(self, request: OrderRequest) -> VenueOrder:
        return self._call("submit_order", lambda: self.inner.submit_order(request))

    def cancel_order(
        self, *, symbol: str, client_order_id: str, venue_order_id: str | None = None
    ) -> VenueOrder:
        return self._call(
            "cancel_order",
            lambda: self.inner.cancel_order(
                symbol=symbol, client_order_id=client_order_id, venue_order_id=venue_order_id
            ),
            cancel=True,
        )

    def amend_order(self, **kwargs: Any) -> VenueOrder:
        return self._call("amend_order", lambda: self.inner.amend_order(**kwargs))

    def fetch_order(self, *, symbol: str, client_order_id: str) -> VenueOrder:
        return self._call(
            "fetch_order",
            lambda: self.inner.fetch_order(symbol=symbol, client_order_id=client_order_id),
            cancel=True,  # resolving an order is as urgent as cancelling it
        )

    def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return self._call("fetch_open_orders", lambda: self.inner.fetch_open_orders(symbol))

    def fetch_trades(
        self, *, symbol: str, since_ms: int | None = None, limit: int = 500
    ) -> list[VenueTrade]:
        return self._call(
            "fetch_trades",
            lambda: self.inner.fetch_trades(symbol=symbol, since_ms=since_ms, limit=limit),
        )

    def fetch_order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        return self._call("fetch_order_book", lambda: self.inner.fetch_order_book(symbol, depth))

    def fetch_balances(self) -> dict[str, Balance]:
        return self._call("fetch_balances", self.inner.fetch_balances)

    def cancel_all(self, symbol: str) -> list[VenueOrder]:
        return self._call("cancel_all", lambda: self.inner.cancel_all(symbol), cancel=True)

    def last_used_weight(self) -> int | None:
        return self.inner.last_used_weight()


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, VenueRejected):
        return "rejected"
    if isinstance(exc, VenueOrderNotFound):
        return "not_found"
    return "other"


def pools_for(rate_limits: dict[str, Any] | None) -> tuple[Pool, ...]:
    """``{"weight": [5400, 60], "orders": [90, 10]}`` -> pools; empty -> Binance's."""
    if not rate_limits:
        return BINANCE_POOLS
    return tuple(
        Pool(name, int(capacity), float(window)) for name, (capacity, window) in rate_limits.items()
    )


def _reconcile_on_recover(venue_id: int) -> None:
    from omsweb.celery import app

    app.send_task("oms.recon.reconcile_venue", args=(venue_id,))
    _best_effort(_publish_status, venue_id, "venue back: breaker closed", force=True)


_last_published: dict[int, float] = {}


def _publish_status(venue_id: int, detail: str, *, force: bool = False) -> None:
    """Say a venue's breaker changed (at most once a second per process): an event for
    the listeners (the blotter's push)."""
    from omsweb import events
    from venues.events import VenueStatusChanged

    now = time.monotonic()
    if not force and now - _last_published.get(venue_id, 0.0) < 1.0:
        return
    _last_published[venue_id] = now
    events.emit(VenueStatusChanged(venue_id=venue_id, detail=detail))


@functools.cache
def _guards(pid: int) -> dict[tuple, GuardedAdapter]:
    return {}  # per process: a forked worker child builds its own


def guarded_adapter(venue: Any) -> GuardedAdapter:
    from omsweb.redis_client import client
    from venues.registry import adapter_for

    inner = adapter_for(venue)
    limits = getattr(venue, "rate_limits", None) or {}
    key = (venue.pk, id(inner), repr(sorted(limits.items())))
    cache = _guards(os.getpid())
    guard = cache.get(key)
    if guard is None:
        redis = client()
        guard = GuardedAdapter(
            inner,
            venue_id=venue.pk,
            limiter=RateLimiter(redis, venue.name, pools_for(limits)),
            breaker=CircuitBreaker(redis, venue.name, BreakerConfig()),
            on_recover=_reconcile_on_recover,
        )
        cache[key] = guard
    return guard


__all__ = ["GuardedAdapter", "guarded_adapter", "pools_for"]
