"""Every venue call goes through the venue's cluster-wide rate limiter and circuit
breaker (both in Redis, shared by all workers).

``guarded_adapter(venue)`` wraps the venue's adapter (``venues.registry``):

* breaker open -> ``VenueUnavailable`` at once, nothing sent;
* no tokens within a short wait -> ``VenueRateLimited`` (nothing sent) with the wait;
* the venue says 429 -> the venue is paused for every worker for ``Retry-After``;
  418 (ban) -> the breaker opens until the ban ends;
* timeouts, 5xx, dropped connections count towards opening the breaker; any answer
  from the venue (even a rejection) counts as the venue being up;
* the venue's used-weight header corrects the shared weight count.

When the breaker closes again after being open, ``on_recover(venue_id)`` runs (the
pipeline enqueues a reconciliation of that venue).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from venues.base import (
    Balance,
    Capabilities,
    OrderBook,
    OrderRequest,
    VenueAdapter,
    VenueInDoubt,
    VenueOrder,
    VenueRateLimited,
    VenueTrade,
    VenueUnavailable,
)
from venues.breaker import CLOSED, BreakerConfig, CircuitBreaker
from venues.ratelimit import BINANCE_POOLS, Pool, RateLimiter

log = logging.getLogger(__name__)

# The longest a call waits for rate-limit tokens before it is sent (else it is not sent
# and the caller retries later). It delays the signing of a request after the order was
# marked SUBMITTED, so the pipeline's re-send rule counts it (RESEND_MIN_AGE_S).
MAX_WAIT_S = 2.0


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

    def _call(self, call: str, fn: Callable[[], Any], *, cancel: bool = False) -> Any:
        try:
            allowed = self.breaker.allow()
            wait = 0.0
            if allowed:
                wait = self.limiter.acquire(call, cancel=cancel, max_wait=self.max_wait_s)
        except RedisError as exc:
            # No shared limiter, no breaker: do not send (a venue-wide limit we cannot
            # see could get us banned); the caller retries later, nothing was sent.
            raise VenueRateLimited(
                f"{self.name}: rate limiter unavailable ({exc}); not sent", retry_after=1.0
            ) from exc
        if not allowed:
            raise VenueUnavailable(
                f"VENUE_UNAVAILABLE: {self.name} circuit breaker open", code="VENUE_UNAVAILABLE"
            )
        if wait:
            raise VenueRateLimited(
                f"{self.name} rate limit: retry in {wait:.2f}s (not sent)", retry_after=wait
            )
        try:
            result = fn()
        except VenueRateLimited as exc:
            retry = exc.retry_after or 1.0
            _best_effort(self.limiter.pause, retry)
            if exc.banned:
                _best_effort(self.breaker.record_failure, open_for_s=retry)
            log.warning("%s: %s; paused %.1fs for every worker", self.name, exc.reason, retry)
            raise
        except VenueInDoubt:
            if _best_effort(self.breaker.record_failure) == "open":
                log.warning("%s circuit breaker open", self.name)
                _best_effort(_publish_status, self.venue_id, "circuit breaker open")
            raise
        except Exception:
            self._venue_answered()  # a rejection or not-found is an answer: the venue is up
            raise
        else:
            self._venue_answered()
            return result
        finally:
            # Bookkeeping after the venue answered must never turn its answer into an
            # error (the order would look in doubt although we hold the answer).
            _best_effort(self.limiter.observe_used, self.inner.last_used_weight())

    def _venue_answered(self) -> None:
        previous = _best_effort(self.breaker.record_success)
        if previous not in (None, CLOSED) and self.on_recover is not None:
            log.info("%s is back (breaker was %s)", self.name, previous)
            _best_effort(self.on_recover, self.venue_id)

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
    """Tell the blotters a venue's breaker changed (at most once a second per process)."""
    import time

    from orders.blotter.snapshot import publish_venue_status
    from venues.models import Venue

    now = time.monotonic()
    if not force and now - _last_published.get(venue_id, 0.0) < 1.0:
        return
    _last_published[venue_id] = now
    venue = Venue.objects.filter(pk=venue_id).first()
    if venue is not None:
        publish_venue_status(venue, detail=detail)


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
