"""The risk engine against real PostgreSQL and Redis, through the execution engine: what
it gathers (limits, states, working orders, positions, market data) decides at the
boundaries, and post-trade breaches move trading states."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from orders import engine
from orders.domain.commands import CancelOrder, ModifyOrder
from orders.domain.errors import OrderRiskDenied
from orders.models import Order, OrderEvent
from orders.reports import ExecutionReport, ReportKind
from risk import services
from risk.models import RiskLimit, RiskLimitChange, TradingState, TradingStateChange
from tests.marking import mark_sent
from tests.risk.conftest import checks_of

pytestmark = pytest.mark.django_db

RISK = services.operator("test-risk")


def accept(order: Order, venue_order_id: str | None = None) -> Order:
    mark_sent(order.pk)
    engine.process(
        order.pk,
        [ExecutionReport(kind=ReportKind.ACK, venue_order_id=venue_order_id or f"v{order.pk}")],
    )
    order.refresh_from_db()
    return order


def fill(order: Order, qty: str, price: str, trade_id: str) -> None:
    engine.process(
        order.pk,
        [ExecutionReport(kind=ReportKind.FILL, trade_id=trade_id, quantity=D(qty), price=D(price))],
    )


def halt(scope: str, state: str = "HALTED", **target) -> services.StateChange:
    return services.trading_state_set(
        actor=RISK, scope=scope, state=state, reason=f"test {state}", **target
    )


# --- fail closed, most specific wins, changes apply at once -----------------------------


def test_order_within_default_limits_then_passes(submit):
    order, reasons = submit()
    assert reasons == [] and order.status == "PENDING_NEW"


def test_no_limit_for_a_kind_then_denied_and_stored_with_reasons(ref, submit):
    # Arrange: remove the global max_daily_loss (the only one of its kind)
    limit = RiskLimit.objects.get(kind="max_daily_loss", account=None, instrument=None)
    services.limit_delete(actor=RISK, limit_id=limit.pk, reason="test fail closed")
    # Act
    order, reasons = submit()
    # Assert
    assert checks_of(reasons) == ["NO_LIMIT"]
    order.refresh_from_db()
    assert order.status == "DENIED"
    assert "max_daily_loss" in order.reason
    event = OrderEvent.objects.get(order=order, kind="OrderDenied")
    assert event.source == "risk" and event.payload["reasons"] == reasons
    assert RiskLimitChange.objects.filter(action="deleted", kind="max_daily_loss").exists()


def test_no_limits_at_all_then_every_order_denied(ref, submit):
    RiskLimit.objects.all().delete()
    _, reasons = submit()
    assert checks_of(reasons) == ["NO_LIMIT"]


def test_most_specific_limit_wins(ref, submit, set_limit):
    # Arrange: global 100 (default), symbol BTC 0.5, account DEMO 1, DEMO+BTC 2
    set_limit("max_order_quantity", "0.5", instrument=ref["btc"])
    set_limit("max_order_quantity", "1", account=ref["demo"])
    set_limit("max_order_quantity", "2", account=ref["demo"], instrument=ref["btc"])
    px = {"price": D("100.00")}
    # Act / Assert: DEMO BTC -> account+symbol (2)
    assert submit(quantity=D("2"), **px)[1] == []
    assert checks_of(submit(quantity=D("2.001"), **px)[1]) == ["MAX_ORDER_QUANTITY"]
    # DEMO ETH -> account (1)
    eth = {"instrument": ref["eth"], "price": D("100.00")}
    assert submit(quantity=D("1"), **eth)[1] == []
    assert checks_of(submit(quantity=D("1.001"), **eth)[1]) == ["MAX_ORDER_QUANTITY"]
    # HEDGE BTC -> symbol (0.5) beats global
    hedge = {"account": ref["hedge"], **px}
    assert submit(quantity=D("0.5"), **hedge)[1] == []
    assert checks_of(submit(quantity=D("0.501"), **hedge)[1]) == ["MAX_ORDER_QUANTITY"]
    # HEDGE ETH -> global (100)
    assert submit(account=ref["hedge"], quantity=D("100"), **eth)[1] == []


def test_limit_change_applies_to_the_very_next_order(ref, submit, set_limit):
    assert submit(quantity=D("0.02"))[1] == []
    set_limit("max_order_quantity", "0.01", account=ref["demo"])
    assert checks_of(submit(quantity=D("0.02"), price=D("60001.00"))[1]) == ["MAX_ORDER_QUANTITY"]
    set_limit("max_order_quantity", "0.02", account=ref["demo"])
    assert submit(quantity=D("0.02"), price=D("60002.00"))[1] == []


# --- trading states and the restricted list ---------------------------------------------


@pytest.mark.parametrize("scope", ["global", "venue", "account", "account_symbol", "symbol"])
def test_halted_scope_then_orders_in_scope_denied_others_pass(ref, submit, scope):
    targets = {
        "global": ("global", {}),
        "venue": ("venue", {"venue": ref["sim_a"]}),
        "account": ("account", {"account": ref["demo"]}),
        "account_symbol": ("account", {"account": ref["demo"], "instrument": ref["btc"]}),
        "symbol": ("symbol", {"instrument": ref["btc"]}),
    }
    name, target = targets[scope]
    halt(name, **target)
    _, reasons = submit()
    assert checks_of(reasons) == ["TRADING_STATE"]
    assert "is HALTED (test HALTED)" in reasons[0]["message"]
    outside = {
        "global": None,
        "venue": {"venue": ref["sim_b"]},
        "account": {"account": ref["hedge"]},
        "account_symbol": {"instrument": ref["eth"], "price": D("3000.00")},
        "symbol": {"instrument": ref["eth"], "price": D("3000.00")},
    }[scope]
    if outside is not None:
        assert submit(**outside)[1] == []


def test_release_then_orders_pass_again(ref, submit):
    halt("global")
    assert checks_of(submit()[1]) == ["TRADING_STATE"]
    halt("global", "ACTIVE")
    assert submit(price=D("60001.00"))[1] == []
    changes = list(TradingStateChange.objects.order_by("id").values_list("old_state", "new_state"))
    assert changes == [("ACTIVE", "HALTED"), ("HALTED", "ACTIVE")]


def test_reducing_then_only_position_reducing_orders_pass(ref, submit):
    # Arrange: long 0.02 BTC
    order, _ = submit(quantity=D("0.02"))
    fill(accept(order), "0.02", "60000", "t-red-1")
    halt("account", "REDUCING", account=ref["demo"])
    # Act / Assert
    assert checks_of(submit(price=D("60001.00"))[1]) == ["TRADING_STATE"]  # buy adds
    assert submit(side="sell", quantity=D("0.02"), price=D("60002.00"))[1] == []  # closes
    # with that sell working, another sell would go short
    _, reasons = submit(side="sell", quantity=D("0.001"), price=D("60003.00"))
    assert checks_of(reasons) == ["TRADING_STATE"]
    assert "REDUCING" in reasons[0]["message"]


def test_restricted_symbol_then_denied(ref, submit):
    from risk.models import Restriction

    Restriction.objects.create(instrument=ref["btc"], account=ref["demo"], reason="watch list")
    _, reasons = submit()
    assert checks_of(reasons) == ["RESTRICTED"]
    assert submit(account=ref["hedge"])[1] == []


# --- aggregates gathered from working orders, positions and Redis -----------------------


def test_max_position_counts_same_side_working_orders(ref, submit, set_limit):
    set_limit("max_position", "0.03", account=ref["demo"], instrument=ref["btc"])
    assert submit(quantity=D("0.01"), price=D("60000.00"))[1] == []
    assert submit(quantity=D("0.01"), price=D("60000.01"))[1] == []
    assert submit(quantity=D("0.01"), price=D("60000.02"))[1] == []  # exactly 0.03
    _, reasons = submit(quantity=D("0.0001"), price=D("60000.03"))
    assert checks_of(reasons) == ["MAX_POSITION"]
    assert "|0.0301| > max=0.03" in reasons[0]["message"]
    # the other side does not add: a sell of 0.03 still fits
    assert submit(side="sell", quantity=D("0.03"), price=D("60100.00"))[1] == []


def test_max_position_counts_the_filled_position(ref, submit, set_limit):
    order, _ = submit(quantity=D("0.02"))
    fill(accept(order), "0.02", "60000", "t-pos-1")
    set_limit("max_position", "0.03", account=ref["demo"], instrument=ref["btc"])
    assert submit(quantity=D("0.01"), price=D("60001.00"))[1] == []
    assert checks_of(submit(quantity=D("0.001"), price=D("60002.00"))[1]) == ["MAX_POSITION"]


def test_gross_exposure_counts_working_orders_and_positions(ref, submit, set_limit, market):
    market.mark("ETH/USDT", "3000")
    eth = submit(instrument=ref["eth"], quantity=D("0.1"), price=D("3000.00"))[0]
    fill(accept(eth), "0.1", "3000", "t-exp-1")  # position 0.1 ETH = 300 at the mark
    set_limit("max_gross_exposure", "1500", account=ref["demo"])
    assert submit(quantity=D("0.01"), price=D("60000.00"))[1] == []  # 300 + 600
    assert submit(quantity=D("0.01"), price=D("60000.00"))[1] == []  # 300 + 1200 = max
    _, reasons = submit(quantity=D("0.0001"), price=D("60000.00"))
    assert checks_of(reasons) == ["MAX_GROSS_EXPOSURE"]
    assert "exposure=1500 + order=6 = 1506 > max=1500" in reasons[0]["message"]


def test_max_open_orders_counts_working_not_finished(ref, submit, set_limit):
    set_limit("max_open_orders", "2", account=ref["demo"])
    first, _ = submit(price=D("60000.00"))
    assert submit(price=D("60000.01"))[1] == []
    assert checks_of(submit(price=D("60000.02"))[1]) == ["MAX_OPEN_ORDERS"]
    engine.execute(CancelOrder(order_id=first.pk))
    assert submit(price=D("60000.03"))[1] == []


def test_order_rate_per_account_per_second_ignores_denied(ref, submit, set_limit):
    set_limit("max_orders_per_second", "3", account=ref["demo"])
    for i in range(3):
        assert submit(price=D(f"6000{i}.00"))[1] == []
    assert checks_of(submit(price=D("60009.00"))[1]) == ["ORDER_RATE"]
    assert checks_of(submit(price=D("60008.00"))[1]) == ["ORDER_RATE"]  # denials not counted up
    assert submit(account=ref["hedge"])[1] == []  # per account


def test_duplicate_orders_within_window(ref, submit, set_limit):
    set_limit("max_duplicate_orders", "2", account=ref["demo"])
    assert submit()[1] == []
    assert submit()[1] == []
    _, reasons = submit()
    assert checks_of(reasons) == ["DUPLICATE_ORDER"]
    assert "3 identical orders within 2s > max=2" in reasons[0]["message"]
    assert submit(price=D("60000.01"))[1] == []  # other parameters: not a duplicate
    set_limit("duplicate_window_s", "0", account=ref["demo"])
    assert submit()[1] == []  # window off


def test_self_trade_against_our_resting_order_on_the_same_venue(ref, submit):
    resting, _ = submit(account=ref["hedge"], side="sell", price=D("60010.00"))
    accept(resting)
    _, reasons = submit(price=D("60010.00"))
    assert checks_of(reasons) == ["SELF_TRADE"]
    assert "would cross our own resting order at price=60010" in reasons[0]["message"]
    assert submit(price=D("60009.99"))[1] == []
    assert submit(price=D("60010.00"), venue=ref["sim_b"])[1] == []  # another venue


def test_self_trade_prevention_follows_the_stp_group_of_the_accounts(ref, submit):
    # Arrange: HEDGE rests a sell; DEMO and HEDGE belong to one owner (demo-desk)
    assert ref["demo"].stp_group == ref["hedge"].stp_group == "demo-desk"
    resting, _ = submit(account=ref["hedge"], side="sell", price=D("60010.00"))
    accept(resting)
    # Act / Assert: same group -> self
    _, reasons = submit(price=D("60010.00"))
    assert checks_of(reasons) == ["SELF_TRADE"]
    assert "(STP group demo-desk)" in reasons[0]["message"]
    # other owners: HEDGE leaves the group -> not self, the buy may cross it
    type(ref["hedge"]).objects.filter(pk=ref["hedge"].pk).update(stp_group="other-desk")
    assert submit(price=D("60010.00"))[1] == []
    # no group at all: only the account's own orders are self
    type(ref["demo"]).objects.filter(pk=ref["demo"].pk).update(stp_group="")
    type(ref["hedge"]).objects.filter(pk=ref["hedge"].pk).update(stp_group="")
    assert submit(price=D("60010.00"), quantity=D("0.002"))[1] == []
    own, _ = submit(side="sell", price=D("60020.00"))
    accept(own)
    _, reasons = submit(price=D("60020.00"), quantity=D("0.003"))
    assert checks_of(reasons) == ["SELF_TRADE"]
    assert "STP group" not in reasons[0]["message"]


def test_price_collar_against_the_venue_book(ref, submit, market):
    market.book("BTC/USDT", "60000")
    assert submit(price=D("69000.00"))[1] == []  # 15%
    _, reasons = submit(price=D("69000.01"))
    assert checks_of(reasons) == ["PRICE_COLLAR"]
    assert "from reference=60000 > max=15%" in reasons[0]["message"]


def test_market_order_needs_a_fresh_reference(ref, submit, market):
    mkt = {"type": "market", "price": None}
    _, reasons = submit(**mkt)
    assert checks_of(reasons) == ["REFERENCE_PRICE"]  # none at all
    market.book("BTC/USDT", "60000", age_s=10.5)
    _, reasons = submit(**mkt)
    assert checks_of(reasons) == ["REFERENCE_PRICE"] and "stale" in reasons[0]["message"]
    market.book("BTC/USDT", "60000", age_s=0.2)
    assert submit(**mkt)[1] == []


def test_market_order_to_a_venue_whose_book_is_not_live_then_denied_naming_it(ref, submit, market):
    # Arrange: sim-b is LIVE; sim-a's book stopped updating 3 s ago, then it went DOWN
    from marketdata.book import MdState

    mkt = {"type": "market", "price": None}
    market.book("BTC/USDT", "60000", venue="sim-b")
    market.book("BTC/USDT", "60000", venue="sim-a", age_s=3.0)
    # Act / Assert: STALE by age, named with the venue
    _, reasons = submit(**mkt)
    assert checks_of(reasons) == ["REFERENCE_PRICE"]
    assert "sim-a BTC/USDT market data is STALE" in reasons[0]["message"]
    assert submit(venue=ref["sim_b"], **mkt)[1] == []  # the LIVE venue takes it
    market.book("BTC/USDT", "60000", venue="sim-a", state=MdState.DOWN)
    _, reasons = submit(**mkt)
    assert "sim-a BTC/USDT market data is DOWN" in reasons[0]["message"]
    # a limit order is collared on the LIVE reference, not denied
    assert submit()[1] == []


def test_collar_uses_the_consolidated_mid_of_live_venues_only(ref, submit, market):
    from marketdata.book import MdState

    market.book("BTC/USDT", "60000", venue="sim-a")
    market.book("BTC/USDT", "61000", venue="sim-b")
    market.book("BTC/USDT", "10000", venue="sim-x", state=MdState.RESYNCING)
    # reference = (best bid 61000 + best ask 60000) / 2 = 60500; 15% collar
    assert submit(price=D("69575.00"))[1] == []
    _, reasons = submit(price=D("69575.01"))
    assert checks_of(reasons) == ["PRICE_COLLAR"]
    assert "reference=60500" in reasons[0]["message"]


def test_market_data_for_an_order_is_two_redis_round_trips(monkeypatch, market):
    """The venue set and the marks travel together, then the books: two round trips
    (a pipeline is one) whatever the number of venues, and the same answer."""
    import redis.connection

    from marketdata.book import MdState
    from risk.engine import read_market_data

    market.book("BTC/USDT", "60000", venue="sim-a")
    market.book("BTC/USDT", "61000", venue="sim-b")
    market.book("BTC/USDT", "10000", venue="sim-x", state=MdState.RESYNCING)
    market.mark("ETH/USDT", "3000")
    cls = redis.connection.AbstractConnection
    sent: list[int] = []
    original = cls.send_packed_command

    def counting(self, *args, **kwargs):
        sent.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "send_packed_command", counting)
    data = read_market_data("sim-a", "BTC/USDT", ["ETH/USDT"])
    assert len(sent) == 2
    assert data.reference_price == D("60500")
    assert data.marks["ETH/USDT"] == D("3000")
    assert data.reference_problem is None


def test_daily_loss_realized_and_unrealized(ref, submit, set_limit, market):
    set_limit("max_daily_loss", "1000", account=ref["demo"], breach_action="REDUCING")
    market.book("BTC/USDT", "60000")
    order, _ = submit(quantity=D("1"), price=D("60000.00"))  # the day's P&L starts at 0
    fill(accept(order), "1", "60000", "t-loss-1")
    market.book("BTC/USDT", "59000")  # unrealized -1000: at the limit, still allowed
    assert submit(quantity=D("0.001"), price=D("59000.00"))[1] == []
    market.book("BTC/USDT", "58999.99")
    _, reasons = submit(quantity=D("0.001"), price=D("59000.01"))
    assert checks_of(reasons) == ["DAILY_LOSS"]
    assert "loss=1000.01 > max=1000" in reasons[0]["message"]
    # reduces (above our own resting buy at 59000: no self-trade)
    assert submit(side="sell", quantity=D("0.5"), price=D("59000.01"))[1] == []


# --- amends and cancels -----------------------------------------------------------------


def test_amend_checked_against_limits_and_refused_amend_recorded(ref, submit, set_limit):
    order = accept(submit(quantity=D("0.01"))[0])
    set_limit("max_position", "0.02", account=ref["demo"], instrument=ref["btc"])
    amended = engine.execute(ModifyOrder(order_id=order.pk, quantity=D("0.02")))
    assert amended.status == "PENDING_REPLACE"
    engine.process(order.pk, [ExecutionReport(kind=ReportKind.REPLACED, quantity=D("0.02"))])
    with pytest.raises(OrderRiskDenied) as denied:
        engine.execute(ModifyOrder(order_id=order.pk, quantity=D("0.021")))
    assert checks_of(denied.value.reasons) == ["MAX_POSITION"]
    order.refresh_from_db()
    assert order.status == "ACCEPTED" and order.quantity == D("0.02")
    event = OrderEvent.objects.filter(order=order).order_by("-sequence").first()
    assert event.kind == "AmendDenied" and event.source == "risk"


def test_amend_when_halted_then_denied_but_cancel_never_blocked(ref, submit):
    order = accept(submit()[0])
    halt("global")
    with pytest.raises(OrderRiskDenied):
        engine.execute(ModifyOrder(order_id=order.pk, price=D("59000.00")))
    canceled = engine.execute(CancelOrder(order_id=order.pk, reason="test"))
    assert canceled.status == "PENDING_CANCEL"


# --- post-trade -------------------------------------------------------------------------


def test_fill_beyond_max_position_then_scope_reducing_with_reason(ref, submit, set_limit):
    order = accept(submit(quantity=D("0.02"))[0])
    set_limit("max_position", "0.015", account=ref["demo"], instrument=ref["btc"])
    # Act
    fill(order, "0.01", "60000", "t-post-1")  # within
    assert not TradingState.objects.exclude(state="ACTIVE").exists()
    fill(order, "0.01", "60000", "t-post-2")  # 0.02 > 0.015
    # Assert
    state = TradingState.objects.get(scope="account", account=ref["demo"], instrument=ref["btc"])
    assert state.state == "REDUCING" and state.source == "auto"
    assert "MAX_POSITION" in state.reason and "t-post-2" in state.reason
    change = TradingStateChange.objects.get(trading_state=state)
    assert change.changed_by_name == "risk-engine" and change.new_state == "REDUCING"
    assert checks_of(submit(price=D("60001.00"))[1]) == ["TRADING_STATE", "MAX_POSITION"]
    assert submit(side="sell", quantity=D("0.01"), price=D("60002.00"))[1] == []
    # ETH is not in the breached scope
    assert submit(instrument=ref["eth"], price=D("3000.00"))[1] == []


def test_fill_beyond_daily_loss_then_account_halted_and_sweep_enqueued(
    ref, submit, set_limit, market, django_capture_on_commit_callbacks
):
    set_limit("max_daily_loss", "500", account=ref["demo"], breach_action="HALTED")
    market.book("BTC/USDT", "60000")
    buy = accept(submit(quantity=D("1"), price=D("60000.00"))[0])
    fill(buy, "1", "60000", "t-loss-a")
    sell = accept(submit(side="sell", quantity=D("1"), price=D("59000.00"))[0])
    with django_capture_on_commit_callbacks() as callbacks:
        fill(sell, "1", "59000", "t-loss-b")  # realized -1000
    state = TradingState.objects.get(scope="account", account=ref["demo"], instrument=None)
    assert state.state == "HALTED" and "DAILY_LOSS" in state.reason
    assert any(cb.__qualname__.startswith("trading_state_set.") for cb in callbacks)


def test_post_trade_never_lowers_a_state(ref, submit, set_limit):
    order = accept(submit(quantity=D("0.02"))[0])
    halt("account", account=ref["demo"], instrument=ref["btc"])  # HALTED by risk
    set_limit("max_position", "0.01", account=ref["demo"], instrument=ref["btc"])
    fill(order, "0.02", "60000", "t-post-3")
    state = TradingState.objects.get(scope="account", account=ref["demo"], instrument=ref["btc"])
    assert state.state == "HALTED" and state.changed_by_name == "test-risk"


# --- who may change controls ------------------------------------------------------------


def test_trader_cannot_change_limits_or_states(ref, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username="t1", password="x-123456")
    user.groups.add(Group.objects.get(name="trader"))
    actor = services.Actor.of(user, "api")
    with pytest.raises(services.RiskPermissionDenied):
        services.trading_state_set(actor=actor, scope="global", state="ACTIVE", reason="no")
    with pytest.raises(services.RiskPermissionDenied):
        services.limit_create(actor=actor, kind="max_position", value="1", reason="no")


def test_change_without_reason_then_400_naming_reason(ref):
    with pytest.raises(services.RiskValidationError) as err:
        services.trading_state_set(actor=RISK, scope="global", state="HALTED", reason="  ")
    assert err.value.field == "reason"


def test_roll_trading_day_starts_todays_pnl(ref, submit):
    from risk.models import AccountRisk

    AccountRisk.objects.update(pnl_day=None)
    assert services.roll_trading_day() == 2
    assert services.roll_trading_day() == 0
    assert set(AccountRisk.objects.values_list("pnl_day", flat=True)) == {services.trading_day()}


# --- what is read before the lock, and the account's first order -------------------------


def test_exposure_values_other_symbols_held_at_their_current_mark(ref, submit, set_limit, market):
    # Arrange: 0.1 ETH bought at 3000, now marked at 4000 (read after the lock's reads)
    eth = submit(instrument=ref["eth"], quantity=D("0.1"), price=D("3000.00"))[0]
    fill(accept(eth), "0.1", "3000", "t-mark-1")
    market.mark("ETH/USDT", "4000")
    set_limit("max_gross_exposure", "1000", account=ref["demo"])
    # Act / Assert: 400 + 600 fits exactly; 6 more does not (at 3000 it would)
    assert submit(quantity=D("0.01"), price=D("60000.00"))[1] == []
    _, reasons = submit(quantity=D("0.0001"), price=D("60000.00"))
    assert checks_of(reasons) == ["MAX_GROSS_EXPOSURE"]
    assert "exposure=1000 + order=6 = 1006 > max=1000" in reasons[0]["message"]


def test_first_order_of_an_account_without_risk_row_then_row_created_and_checked(
    ref, submit, set_limit
):
    from django.utils import timezone

    from risk.models import AccountRisk

    # Arrange
    AccountRisk.objects.filter(account=ref["demo"]).delete()
    set_limit("max_open_orders", "1", account=ref["demo"])
    # Act
    first, reasons = submit()
    # Assert: the lock found no row, made one, and the checks still ran under it
    assert reasons == [] and first.status == "PENDING_NEW"
    row = AccountRisk.objects.get(account=ref["demo"])
    assert row.pnl_day == timezone.now().date()
    assert checks_of(submit(price=D("60000.01"))[1]) == ["MAX_OPEN_ORDERS"]
