"""Every venue call through the guard (venues/guard.py): breaker and limiter in the real
Redis of the test run, a scripted adapter behind them."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from venues.base import (
    OrderRequest,
    VenueAdapter,
    VenueInDoubt,
    VenueRateLimited,
    VenueRejected,
    VenueUnavailable,
)
from venues.breaker import CLOSED, OPEN, BreakerConfig, CircuitBreaker
from venues.guard import GuardedAdapter
from venues.ratelimit import Pool, RateLimiter

REQUEST = OrderRequest(
    client_order_id="guard-1",
    symbol="BTC/USDT",
    side="buy",
    type="limit",
    quantity=Decimal("0.001"),
    price=Decimal("60000"),
    time_in_force="GTC",
)


class Scripted(VenueAdapter):
    """Answers each call with the next item of ``script`` (an exception is raised)."""

    name = "scripted"

    def __init__(self, *script: object, used_weight: int | None = None) -> None:
        self.script = list(script)
        self.calls = 0
        self.used_weight = used_weight

    def _next(self) -> object:
        self.calls += 1
        item = self.script.pop(0) if self.script else "ok"
        if isinstance(item, Exception):
            raise item
        return item

    def submit_order(self, request):  # noqa: ANN001, ANN201
        return self._next()

    def fetch_order(self, *, symbol, client_order_id):  # noqa: ANN001, ANN201
        return self._next()

    def last_used_weight(self) -> int | None:
        return self.used_weight

    def capabilities(self):  # noqa: ANN201
        raise NotImplementedError

    def cancel_order(self, **kwargs):  # noqa: ANN003, ANN201
        return self._next()

    def amend_order(self, **kwargs):  # noqa: ANN003, ANN201
        return self._next()

    def fetch_open_orders(self, symbol=None):  # noqa: ANN001, ANN201
        return self._next()

    def fetch_trades(self, **kwargs):  # noqa: ANN003, ANN201
        return self._next()

    def fetch_order_book(self, symbol, depth=10):  # noqa: ANN001, ANN201
        return self._next()

    def fetch_balances(self):  # noqa: ANN201
        return self._next()


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture
def guard(redis_client):
    """``guard(inner)``: the inner adapter behind a fresh venue's limiter and breaker."""
    venue = f"test-{uuid.uuid4().hex[:8]}"
    recovered: list[int] = []

    def build(inner: VenueAdapter, client=None) -> GuardedAdapter:  # noqa: ANN001
        client = client or redis_client
        g = GuardedAdapter(
            inner,
            venue_id=7,
            limiter=RateLimiter(client, venue, (Pool("weight", 1000, 60.0),)),
            breaker=CircuitBreaker(client, venue, BreakerConfig(threshold=3, streak=10)),
            on_recover=recovered.append,
        )
        g.recovered = recovered  # type: ignore[attr-defined]
        return g

    yield build
    for key in redis_client.scan_iter(f"oms:*:{venue}*"):
        redis_client.delete(key)


def test_a_429_pauses_the_venue_for_every_worker_and_is_not_a_breaker_failure(guard):
    first = guard(Scripted(VenueRateLimited("429", retry_after=4.0)))
    with pytest.raises(VenueRateLimited):
        first.submit_order(REQUEST)
    other = guard(Scripted("ok"))  # another worker
    with pytest.raises(VenueRateLimited) as exc:
        other.submit_order(REQUEST)
    assert other.inner.calls == 0  # never sent
    assert exc.value.retry_after == pytest.approx(4.0, abs=0.1)
    assert other.breaker.state()["state"] == CLOSED


def test_a_418_opens_the_breaker_until_the_ban_ends(guard):
    g = guard(Scripted(VenueRateLimited("418", retry_after=60.0, banned=True)))
    with pytest.raises(VenueRateLimited):
        g.submit_order(REQUEST)
    state = g.breaker.state()
    assert state["state"] == OPEN and state["open_until"] > 0
    g.limiter.redis.delete(g.limiter.pause_key)
    with pytest.raises(VenueUnavailable):
        g.submit_order(REQUEST)


def test_in_doubt_answers_open_the_breaker_then_calls_fail_fast_unsent(guard):
    g = guard(Scripted(*[VenueInDoubt("503")] * 3))
    for _ in range(3):
        with pytest.raises(VenueInDoubt):
            g.submit_order(REQUEST)
    with pytest.raises(VenueUnavailable) as exc:
        g.submit_order(REQUEST)
    assert exc.value.reason.startswith("VENUE_UNAVAILABLE")
    assert g.inner.calls == 3


def test_a_rejection_is_an_answer_the_venue_is_up(guard):
    g = guard(Scripted(VenueInDoubt("503"), VenueInDoubt("503"), VenueRejected("no")))
    for _ in range(2):
        with pytest.raises(VenueInDoubt):
            g.submit_order(REQUEST)
    with pytest.raises(VenueRejected):
        g.submit_order(REQUEST)
    assert g.breaker.state()["state"] == CLOSED


def test_the_first_answer_after_an_open_breaker_triggers_recovery(guard):
    g = guard(Scripted("ok"))
    g.breaker.record_failure(open_for_s=0.0)  # open, cool-down already over
    assert g.submit_order(REQUEST) == "ok"  # the probe
    assert g.recovered == [7]
    assert g.submit_order(REQUEST) == "ok"
    assert g.recovered == [7]


def test_redis_down_means_not_sent(guard):
    from omsweb.stack import free_port

    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    g = guard(Scripted("ok"), client=down)
    with pytest.raises(VenueRateLimited) as exc:
        g.submit_order(REQUEST)
    assert "not sent" in exc.value.reason and g.inner.calls == 0


def test_bookkeeping_failing_after_the_answer_keeps_the_answer(guard, monkeypatch):
    g = guard(Scripted("ok", used_weight=12))

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(g, "_after_script", broken)
    assert g.submit_order(REQUEST) == "ok"


class CountingConnection(redis.Connection):
    """Counts what this client sends: one send is one round trip."""

    sends = 0

    def send_packed_command(self, command, check_health=True):  # noqa: ANN001, ANN201
        CountingConnection.sends += 1
        return super().send_packed_command(command, check_health)


def test_one_round_trip_before_and_one_after_the_call(guard):
    counting = redis.Redis.from_url(os.environ["REDIS_URL"], connection_class=CountingConnection)
    g = guard(Scripted("ok", "ok", used_weight=40), client=counting)
    g.submit_order(REQUEST)  # scripts loaded
    before = CountingConnection.sends
    assert g.submit_order(REQUEST) == "ok"
    # two scripts: breaker check + tokens, then success + the venue's weight count
    assert CountingConnection.sends - before == 2
    assert g.limiter.usage()["weight"] == pytest.approx(0.04, abs=0.002)  # the venue's 40
    counting.close()


def test_a_call_turned_away_by_the_breaker_takes_no_tokens(guard):
    g = guard(Scripted("ok"))
    g.breaker.record_failure(open_for_s=60.0)
    with pytest.raises(VenueUnavailable):
        g.submit_order(REQUEST)
    assert g.limiter.usage()["weight"] == 0.0 and g.inner.calls == 0


def test_answers_counted_after_the_block_failures_at_once(guard):
    g = guard(Scripted("ok", VenueInDoubt("503")))
    g.breaker.record_failure(open_for_s=0.0)  # open, cool-down over: the next call probes
    with g.answers_counted_after():
        assert g.submit_order(REQUEST) == "ok"
        assert g.recovered == []  # not counted yet: the caller applies the answer first
    assert g.recovered == [7] and g.breaker.state()["state"] == CLOSED
    with g.answers_counted_after():
        with pytest.raises(VenueInDoubt):
            g.submit_order(REQUEST)
        assert g.breaker.state()["failures"] == 1  # a failure is counted at once


def test_nested_blocks_count_at_the_outer_end(guard):
    g = guard(Scripted("ok"))
    g.breaker.record_failure(open_for_s=0.0)  # the next call is the probe
    with g.answers_counted_after():
        with g.answers_counted_after():
            assert g.submit_order(REQUEST) == "ok"
        assert g.recovered == []  # the inner block's end is not the end
    assert g.recovered == [7] and g.breaker.state()["state"] == CLOSED


def _sample(name: str, labels: dict[str, str]) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_in_doubt_answers_when_breaker_opens_then_alert_and_errors_counted(guard, caplog):
    g = guard(Scripted(*[VenueInDoubt("503")] * 3, VenueRejected("no")))
    g.name = f"guard-{uuid.uuid4().hex[:6]}"
    with caplog.at_level("WARNING", logger="oms.alerts"):
        for _ in range(3):
            with pytest.raises(VenueInDoubt):
                g.submit_order(REQUEST)
        with pytest.raises(VenueUnavailable):
            g.submit_order(REQUEST)

    opened = [r.getMessage() for r in caplog.records if r.name == "oms.alerts"]
    assert opened == [
        f'event=breaker_open venue={g.name} reason="timeouts, 5xx or lost connections"'
    ]
    errors = "oms_venue_errors_total"
    assert _sample(errors, {"venue": g.name, "kind": "in_doubt"}) == 3
    assert _sample(errors, {"venue": g.name, "kind": "breaker_open"}) == 1


def test_failed_probe_when_breaker_reopens_then_no_new_alert(guard, caplog):
    g = guard(Scripted(*[VenueInDoubt("503")] * 4))
    g.name = f"guard-{uuid.uuid4().hex[:6]}"
    with caplog.at_level("WARNING", logger="oms.alerts"):
        for _ in range(3):
            with pytest.raises(VenueInDoubt):
                g.submit_order(REQUEST)
        g.breaker.redis.hset(g.breaker.key, "open_until", 0)  # the cool-down is over
        with pytest.raises(VenueInDoubt):
            g.submit_order(REQUEST)  # the probe fails: open again

    assert g.inner.calls == 4 and g.breaker.state()["state"] == OPEN
    opened = [r.getMessage() for r in caplog.records if r.name == "oms.alerts"]
    assert len(opened) == 1
