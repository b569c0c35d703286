"""TCA and venue scores kept by the engine's listener and the sweep (routing/tca.py,
routing/scores.py) through the in-process engine harness: real engine, writer, database
and Redis, a scripted venue. Arrivals, fills, markouts swept later, children rolled up
into their parent, and children's outcomes becoming their venue's score."""

from __future__ import annotations

import time
from decimal import Decimal as D

import pytest

from marketdata.store import mark_history_key, record_mark
from orders.models import Account, Instrument, Order
from routing import scores, tca
from routing.models import FillTca, OrderTca, RoutedChild, VenueScore
from tests.orders.engine_harness import fill, installed, reject

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOL = "BTC/USDT"


@pytest.fixture
def harness(transactional_db, monkeypatch):
    from omsweb.redis_client import client

    redis = client()
    keys = (tca.DUE_KEY, tca.ARRIVALS_WATERMARK_KEY, mark_history_key(SYMBOL))
    redis.delete(*keys)
    yield from installed(monkeypatch)
    redis.delete(*keys)


@pytest.fixture
def redis():
    from omsweb.redis_client import client

    return client()


def mark(redis, mid: str, at: float) -> None:
    record_mark(redis, SYMBOL, D(mid), at)


def due(redis) -> list[str]:
    return sorted(m.decode() for m in redis.zrange(tca.DUE_KEY, 0, -1))


def test_direct_order_when_filled_then_arrival_slippage_and_markouts_later(harness, redis):
    # Arrange: the consolidated mid is 60000 from a second ago
    mark(redis, "60000", time.time() - 1)
    harness.venue.on_submit(fill("0.01", "60006"))
    # Act
    order = harness.submit(price=D("60010"))
    harness.run_queued()
    # Assert: arrival at acceptance, figures after the fill
    row = OrderTca.objects.get(order_id=order.pk)
    assert row.arrival_mid == D("60000") and row.venue == "sim-a" and row.side == "buy"
    assert row.average_price == D("60006") and row.slippage_bp == D("1.00")
    fill_row = FillTca.objects.get(tca_order=row)
    assert fill_row.mid_at_fill == D("60000") and not fill_row.routed
    assert fill_row.mid_1s is None and row.markout_1s_bp is None  # not sampled yet
    at = fill_row.executed_at.timestamp()
    assert len(due(redis)) == 3  # +1 s, +5 s, +60 s
    # Act: the market moves; the sweep runs late, after all three are due
    mark(redis, "60012", at + 0.5)  # in force at +1 s
    mark(redis, "59994", at + 4)  # in force at +5 s
    assert tca.sweep_markouts(now=at + 2) == 1  # only +1 s is due
    mark(redis, "60000", at + 59)
    assert tca.sweep_markouts(now=at + 61) == 2
    # Assert: the mid in force at each moment, whenever the sweep ran
    fill_row.refresh_from_db()
    row.refresh_from_db()
    assert (fill_row.mid_1s, fill_row.mid_5s, fill_row.mid_60s) == (
        D("60012"), D("59994"), D("60000"),
    )  # fmt: skip
    assert row.markout_1s_bp == D("1.00")  # (60012 - 60006) / 60006
    assert row.markout_5s_bp == D("-2.00")
    assert row.markout_60s_bp == D("-1.00")
    assert due(redis) == [] and tca.sweep_markouts(now=at + 120) == 0


def test_markout_when_no_market_data_then_unknown_not_invented(harness, redis):
    harness.venue.on_submit(fill("0.01", "60006"))
    order = harness.submit(price=D("60010"))
    harness.run_queued()
    row = OrderTca.objects.get(order_id=order.pk)
    assert row.arrival_mid is None and row.slippage_bp is None  # no mark history at all
    at = FillTca.objects.get(tca_order=row).executed_at.timestamp()
    assert tca.sweep_markouts(now=at + 61) == 3
    row.refresh_from_db()
    assert (row.markout_1s_bp, row.markout_5s_bp, row.markout_60s_bp) == (None, None, None)
    assert row.effective_spread_bp is None  # no mid known at the fill either


def test_unfilled_order_when_swept_then_arrival_row_once(harness, redis):
    # Arrange: the mid moves after the order is accepted
    mark(redis, "60000", time.time() - 1)
    order = harness.submit(price=D("59000"))  # rests: no fill
    mark(redis, "60100", time.time() + 0.01)
    # Act
    assert tca.sweep_arrivals() == 1
    # Assert: the mid in force at acceptance, not at the sweep; a second run adds nothing
    row = OrderTca.objects.get(order_id=order.pk)
    assert row.arrival_mid == D("60000") and row.filled_quantity == 0
    assert row.average_price is None and row.slippage_bp is None
    assert tca.sweep_arrivals() == 0 and OrderTca.objects.count() == 1


def test_denied_order_then_no_tca_row(harness, redis):
    from orders.domain.errors import OrderRiskDenied

    with pytest.raises(OrderRiskDenied):
        harness.submit(quantity=D("100000"))
    assert Order.objects.filter(status="DENIED").count() == 1
    tca.sweep_arrivals()
    assert not OrderTca.objects.exists()


def _parent(quantity: str = "0.01") -> Order:
    """A parent order (no venue) as the router's engine makes it."""
    return Order.objects.create(
        client_order_id=f"parent-{time.monotonic_ns()}",
        account=Account.objects.get(code="DEMO"),
        instrument=Instrument.objects.get(symbol=SYMBOL),
        side="buy",
        type="limit",
        quantity=D(quantity),
        price=D("60010"),
        time_in_force="IOC",
        venue=None,
        status="ACCEPTED",
        request_fingerprint="test",
        event_sequence=1,
    )


def test_children_roll_up_into_parent_and_their_outcomes_score_the_venue(harness, redis):
    # Arrange
    mark(redis, "60000", time.time() - 1)
    parent = _parent()
    tca.sweep_arrivals()
    head = OrderTca.objects.get(order_id=parent.pk)
    assert head.venue == "" and head.arrival_mid == D("60000")
    child = dict(parent_id=parent.pk, time_in_force="IOC", price=D("60010"))
    harness.venue.on_submit(fill("0.004", "60005"), fill("0.002", "60008"), reject("no"))
    # Act: three children, the third rejected by the venue
    first = harness.submit(**child, quantity=D("0.005"))
    second = harness.submit(**child, quantity=D("0.003"))
    third = harness.submit(**child, quantity=D("0.002"))
    harness.run_queued()
    # Assert: the parent's figures are its children's fills; no child has a TCA row
    head.refresh_from_db()
    assert head.filled_quantity == D("0.006")
    assert head.average_price == D("60006")  # (0.004 x 60005 + 0.002 x 60008) / 0.006
    assert head.slippage_bp == D("1.00")
    assert not OrderTca.objects.filter(order_id__in=[first.pk, second.pk, third.pk]).exists()
    assert FillTca.objects.filter(tca_order=head, routed=True).count() == 2
    # each child done is evidence about sim-a
    outcomes = {c.order_id: c for c in RoutedChild.objects.all()}
    assert set(outcomes) == {first.pk, second.pk, third.pk}
    assert outcomes[first.pk].filled_quantity == D("0.004") and not outcomes[first.pk].rejected
    assert outcomes[third.pk].rejected and outcomes[third.pk].ack_latency_ms is not None
    score = VenueScore.objects.get(venue="sim-a", symbol=SYMBOL)
    assert score.children == 3 and score.reject_rate == D("0.3333")
    assert score.fill_rate == D("0.7500")  # 0.006 of 0.008 sent and not rejected
    assert D("0") < score.score < D("1")
    assert scores.scores_for(SYMBOL, ["sim-a", "sim-b"]) == {"sim-a": score.score, "sim-b": 1}


def test_child_score_when_markouts_adverse_then_score_drops(harness, redis):
    # Arrange: a child fully filled, then the market runs against it
    mark(redis, "60000", time.time() - 1)
    parent = _parent()
    harness.venue.on_submit(fill("0.005", "60005"))
    harness.submit(parent_id=parent.pk, time_in_force="IOC", price=D("60010"), quantity=D("0.005"))
    harness.run_queued()
    before = scores.scores_for(SYMBOL, ["sim-a"])["sim-a"]
    at = FillTca.objects.get().executed_at.timestamp()
    mark(redis, "59900", at + 0.5)  # -17 bp at +1 s and +5 s
    # Act
    tca.sweep_markouts(now=at + 6)
    # Assert
    after = VenueScore.objects.get(venue="sim-a", symbol=SYMBOL)
    assert after.markout_1s_bp == D("-17.50") and after.markout_5s_bp == D("-17.50")
    assert after.score < before


def test_sweep_when_storing_fails_then_samples_put_back_for_the_next_run(redis, monkeypatch):
    # Arrange: two samples due, one not yet
    redis.delete(tca.DUE_KEY)
    now = time.time()
    redis.zadd(
        tca.DUE_KEY,
        {
            f"1:1:{now - 2:.6f}:{SYMBOL}": now - 1,
            f"1:5:{now - 2:.6f}:{SYMBOL}": now + 3,
            f"2:1:{now - 2:.6f}:{SYMBOL}": now - 1,
        },
    )

    def broken(redis, due):
        raise RuntimeError("database away")

    monkeypatch.setattr(tca, "_sample", broken)
    # Act
    with pytest.raises(RuntimeError):
        tca.sweep_markouts(now=now)
    # Assert: nothing lost; the two due ones are taken again by the next run
    assert len(due(redis)) == 3
    assert len(tca.pop_due(redis, now)) == 2
    redis.delete(tca.DUE_KEY)
