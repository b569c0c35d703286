"""The pure pre-trade checks at their boundaries: just inside passes, just outside is
denied with the numbers in the reason. No database, no clock."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from risk import checks
from risk.checks import LimitRow, Limits, Snapshot, StateRow

LIMITS = Limits(
    max_order_quantity=D("10"),
    max_order_notional=D("100000"),
    max_position=D("20"),
    max_gross_exposure=D("500000"),
    max_open_orders=D("5"),
    max_orders_per_second=D("3"),
    max_duplicate_orders=D("2"),
    duplicate_window_s=D("2"),
    price_collar_pct=D("10"),
    max_reference_age_s=D("5"),
    max_daily_loss=D("1000"),
)


def snap(**overrides) -> Snapshot:
    """A BTC/USDT buy of 1 at 10000 that passes every check, changed by ``overrides``."""
    fields = {
        "symbol": "BTC/USDT",
        "side_sign": 1,
        "is_market": False,
        "quantity": D("1"),
        "price": D("10000"),
        "tick_size": D("0.01"),
        "lot_size": D("0.001"),
        "min_notional": D("5"),
        "limits": LIMITS,
        "limit_scope": "DEMO BTC/USDT",
        "reference_price": D("10000"),
        "reference_age_s": 0.5,
    }
    if overrides.get("price") is not None and "reference_price" not in overrides:
        fields["reference_price"] = overrides["price"]  # collar cases give their own
    fields.update(overrides)
    return Snapshot.build(**fields)


def codes(s: Snapshot) -> list[str]:
    return [r.check for r in checks.evaluate(s)]


def test_order_within_every_limit_then_no_reasons():
    assert checks.evaluate(snap()) == []


# (name, passing snapshot changes, failing snapshot changes, expected check, message part)
BOUNDARIES = [
    (
        "max order quantity",
        {"quantity": D("10"), "price": D("100")},
        {"quantity": D("10.001"), "price": D("100")},
        "MAX_ORDER_QUANTITY",
        "quantity=10.001 > max=10",
    ),
    (
        "max order notional",
        {"quantity": D("10"), "price": D("10000")},
        {"quantity": D("10"), "price": D("10000.01")},
        "MAX_ORDER_NOTIONAL",
        "notional=100000.1 > max=100000",
    ),
    (
        "min notional",
        {"quantity": D("0.001"), "price": D("5000"), "reference_price": D("5000")},
        {"quantity": D("0.001"), "price": D("4999.99"), "reference_price": D("5000")},
        "MIN_NOTIONAL",
        "notional=4.99999 < min=5",
    ),
    ("tick size", {"price": D("10000.01")}, {"price": D("10000.005")}, "TICK_SIZE", "tick=0.01"),
    ("lot size", {"quantity": D("1.001")}, {"quantity": D("1.0005")}, "LOT_SIZE", "lot=0.001"),
    (
        "price collar above",
        {"price": D("11000"), "reference_price": D("10000")},
        {"price": D("11000.01"), "reference_price": D("10000")},
        "PRICE_COLLAR",
        "from reference=10000 > max=10%",
    ),
    (
        "price collar below",
        {"price": D("9000"), "side_sign": -1, "reference_price": D("10000")},
        {"price": D("8999.99"), "side_sign": -1, "reference_price": D("10000")},
        "PRICE_COLLAR",
        "price=8999.99 is 10% from reference=10000",
    ),
    (
        "price collar against a stale reference",
        {"price": D("11000"), "reference_price": D("10000"), "reference_age_s": 60.0},
        {"price": D("11000.01"), "reference_price": D("10000"), "reference_age_s": 60.0},
        "PRICE_COLLAR",
        "> max=10%",
    ),
    (
        "market order reference age",
        {"is_market": True, "price": None, "reference_age_s": 5.0},
        {"is_market": True, "price": None, "reference_age_s": 5.001},
        "REFERENCE_PRICE",
        "is stale: age=5.0s > max=5s",
    ),
    (
        "max position with same-side working orders",
        {"position": D("10"), "working_same_side": D("9"), "quantity": D("1"), "price": D("10")},
        {"position": D("10"), "working_same_side": D("9"), "quantity": D("1.001"), "price": D("10")},
        "MAX_POSITION",
        "position=10 + working=9 + order=1.001 = 20.001; |20.001| > max=20",
    ),
    (
        "max position short",
        {"position": D("-15"), "working_same_side": D("4"), "side_sign": -1, "price": D("10")},
        {"position": D("-15"), "working_same_side": D("4.001"), "side_sign": -1, "price": D("10")},
        "MAX_POSITION",
        "|-20.001| > max=20",
    ),
    (
        "max gross exposure",
        {"gross_exposure": D("490000")},
        {"gross_exposure": D("490000.01")},
        "MAX_GROSS_EXPOSURE",
        "exposure=490000.01 + order=10000 = 500000.01 > max=500000",
    ),
    ("max open orders", {"open_orders": 4}, {"open_orders": 5}, "MAX_OPEN_ORDERS", "open_orders=5 + 1 > max=5"),
    ("order rate", {"orders_last_second": 2}, {"orders_last_second": 3}, "ORDER_RATE", "orders_last_1s=3 + 1 > max=3/s"),
    (
        "duplicate order",
        {"duplicates_in_window": 1},
        {"duplicates_in_window": 2},
        "DUPLICATE_ORDER",
        "3 identical orders within 2s > max=2",
    ),
    (
        "self-trade buy against our resting sell",
        {"own_opposite_best": D("10000.01")},
        {"own_opposite_best": D("10000")},
        "SELF_TRADE",
        "buy at 10000 would cross our own resting order at price=10000",
    ),
    (
        "self-trade sell against our resting buy",
        {"side_sign": -1, "own_opposite_best": D("9999.99")},
        {"side_sign": -1, "own_opposite_best": D("10000")},
        "SELF_TRADE",
        "sell at 10000 would cross",
    ),
    ("daily loss", {"daily_pnl": D("-1000")}, {"daily_pnl": D("-1000.01")}, "DAILY_LOSS", "loss=1000.01 > max=1000"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "inside", "outside", "check", "message"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES]
)
def test_check_boundary_inside_passes_outside_denied(case, inside, outside, check, message):
    # Act
    passing = checks.evaluate(snap(**inside))
    failing = checks.evaluate(snap(**outside))
    # Assert
    assert passing == [], passing
    assert [r.check for r in failing] == [check], failing
    reason = failing[0]
    assert reason.message.startswith(f"{check}: ")
    assert message in reason.message
    assert set(reason.as_dict()) == {"check", "message", "limit", "value"}


def test_max_order_notional_reason_carries_limit_and_value():
    reason = checks.evaluate(snap(quantity=D("10"), price=D("12500.00")))[0]
    assert reason.as_dict() == {
        "check": "MAX_ORDER_NOTIONAL",
        "message": "MAX_ORDER_NOTIONAL: notional=125000 > max=100000",
        "limit": "100000",
        "value": "125000",
    }


def test_market_order_without_reference_then_denied():
    reasons = checks.evaluate(snap(is_market=True, price=None, reference_price=None))
    assert [r.check for r in reasons] == ["REFERENCE_PRICE"]
    assert "no reference price for BTC/USDT" in reasons[0].message


def test_market_order_with_reference_of_unknown_age_then_denied():
    reasons = checks.evaluate(snap(is_market=True, price=None, reference_age_s=None))
    assert [r.check for r in reasons] == ["REFERENCE_PRICE"]
    assert "age=unknown" in reasons[0].message


def test_limit_order_without_reference_then_collar_not_applicable():
    assert checks.evaluate(snap(price=D("50000"), quantity=D("0.1"), reference_price=None)) == []


def test_market_order_notional_uses_reference():
    reasons = checks.evaluate(snap(is_market=True, price=None, quantity=D("10.001")))
    assert {r.check for r in reasons} == {"MAX_ORDER_QUANTITY", "MAX_ORDER_NOTIONAL"}


def test_several_failures_then_every_reason_returned():
    s = snap(
        quantity=D("11"),
        price=D("20000"),
        reference_price=D("10000"),
        open_orders=5,
        daily_pnl=D("-5000"),
    )
    assert codes(s) == [
        "MAX_ORDER_QUANTITY",
        "MAX_ORDER_NOTIONAL",
        "PRICE_COLLAR",
        "MAX_OPEN_ORDERS",
        "DAILY_LOSS",
    ]


# --- fail closed -------------------------------------------------------------------------


def test_no_limits_configured_then_denied_naming_every_missing_kind():
    reasons = checks.evaluate(snap(limits=Limits()))
    assert [r.check for r in reasons] == ["NO_LIMIT"]
    for kind in checks.LimitKind:
        assert kind.value in reasons[0].message
    assert "DEMO BTC/USDT" in reasons[0].message


def test_one_limit_kind_missing_then_denied():
    reasons = checks.evaluate(snap(limits=replace(LIMITS, max_daily_loss=None)))
    assert [r.check for r in reasons] == ["NO_LIMIT"]
    assert reasons[0].message.endswith(": max_daily_loss")


def test_zero_limit_is_a_limit_not_a_missing_one():
    reasons = checks.evaluate(snap(limits=replace(LIMITS, max_order_quantity=D("0"))))
    assert [r.check for r in reasons] == ["MAX_ORDER_QUANTITY"]


# --- most specific wins ------------------------------------------------------------------


def test_resolve_limits_most_specific_wins_per_kind():
    rows = [
        LimitRow("max_position", D("100")),
        LimitRow("max_position", D("50"), symbol="BTC/USDT"),
        LimitRow("max_position", D("30"), account="DEMO"),
        LimitRow("max_position", D("10"), account="DEMO", symbol="BTC/USDT"),
        LimitRow("max_open_orders", D("7")),
        LimitRow("max_open_orders", D("9"), symbol="BTC/USDT"),
        LimitRow("max_daily_loss", D("5"), account="DEMO"),
        LimitRow("max_daily_loss", D("6"), symbol="BTC/USDT"),
    ]
    for order in (rows, list(reversed(rows))):
        resolved = checks.resolve_limits(order)
        assert resolved["max_position"].value == D("10")
        assert resolved["max_open_orders"].value == D("9")
        assert resolved["max_daily_loss"].value == D("5")  # account beats symbol


def test_resolved_limit_looser_than_global_applies():
    resolved = checks.resolve_limits(
        [
            LimitRow("max_order_quantity", D("1")),
            LimitRow("max_order_quantity", D("5"), account="A"),
        ]
    )
    limits = replace(LIMITS, max_order_quantity=resolved["max_order_quantity"].value)
    assert checks.evaluate(snap(limits=limits, quantity=D("5"), price=D("100"))) == []


# --- trading states ----------------------------------------------------------------------


def test_effective_state_most_severe_wins_and_names_narrowest_scope():
    rows = [
        StateRow("REDUCING", "global", "g", 0),
        StateRow("HALTED", "venue sim-a", "v", 1),
        StateRow("HALTED", "account DEMO", "a", 2),
    ]
    best = checks.effective_state(rows)
    assert (best.state, best.label) == ("HALTED", "account DEMO")
    assert checks.effective_state([]).state == "ACTIVE"


def test_halted_then_denied_with_scope_and_reason():
    state = StateRow("HALTED", "venue sim-a", "venue incident", 1)
    reasons = checks.evaluate(snap(trading_state=state))
    assert [r.check for r in reasons] == ["TRADING_STATE"]
    assert reasons[0].message == "TRADING_STATE: venue sim-a is HALTED (venue incident)"


def test_halted_denies_even_a_reducing_order():
    state = StateRow("HALTED", "global", "", 0)
    assert codes(snap(trading_state=state, position=D("5"), side_sign=-1)) == ["TRADING_STATE"]


@pytest.mark.parametrize(
    ("position", "side_sign", "working", "quantity", "passes"),
    [
        (D("5"), -1, D("0"), D("5"), True),  # sells the whole long: reduces
        (D("5"), -1, D("2"), D("3"), True),  # with working sells, still within the long
        (D("5"), -1, D("2"), D("3.001"), False),  # together they would flip short
        (D("5"), 1, D("0"), D("1"), False),  # adds to the long
        (D("-5"), 1, D("0"), D("4"), True),  # buys back part of a short
        (D("0"), -1, D("0"), D("1"), False),  # flat: anything opens a position
    ],
)
def test_reducing_only_position_reducing_orders_pass(
    position, side_sign, working, quantity, passes
):
    state = StateRow("REDUCING", "account DEMO", "breach", 2)
    s = snap(
        trading_state=state,
        position=position,
        side_sign=side_sign,
        working_same_side=working,
        quantity=quantity,
        price=D("10000"),
    )
    assert (codes(s) == []) is passes
    if not passes:
        assert "TRADING_STATE" in codes(s)


def test_reducing_order_passes_position_exposure_and_loss_limits_already_breached():
    s = snap(
        position=D("25"),
        side_sign=-1,
        gross_exposure=D("900000"),
        daily_pnl=D("-50000"),
    )
    assert checks.evaluate(s) == []


def test_instrument_disabled_or_restricted_then_denied():
    assert codes(snap(instrument_enabled=False)) == ["INSTRUMENT_DISABLED"]
    reasons = checks.evaluate(snap(restricted="insider list"))
    assert [r.check for r in reasons] == ["RESTRICTED"]
    assert "insider list" in reasons[0].message


# --- amends ------------------------------------------------------------------------------


def test_amend_skips_rate_duplicate_and_open_order_counts():
    s = snap(is_amend=True, open_orders=5, orders_last_second=3, duplicates_in_window=2)
    assert checks.evaluate(s) == []


def test_amend_position_uses_remaining_quantity():
    # a 10 order with 9 filled (already in the position) amended to 11: 2 can still fill
    s = snap(is_amend=True, quantity=D("11"), leaves=D("2"), position=D("18"), price=D("10"))
    assert codes(s) == ["MAX_ORDER_QUANTITY"]
    s = snap(is_amend=True, quantity=D("10"), leaves=D("2.001"), position=D("18"), price=D("10"))
    assert codes(s) == ["MAX_POSITION"]


# --- self-trade against market orders, post-trade ---------------------------------------


def test_self_trade_against_our_market_order_then_denied():
    assert codes(snap(own_opposite_market=True)) == ["SELF_TRADE"]


def test_post_trade_breaches():
    assert checks.position_breach(D("20"), D("20")) is None
    assert checks.position_breach(D("-20.1"), D("20")).check == "MAX_POSITION"
    assert checks.daily_loss_breach(D("-1000"), D("1000")) is None
    assert "loss=1000.5 > max=1000" in checks.daily_loss_breach(D("-1000.5"), D("1000")).message
