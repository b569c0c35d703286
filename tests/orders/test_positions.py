from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.positions import PositionState, apply_fill


def test_buy_from_flat_then_long_at_fill_price():
    p = apply_fill(PositionState(), side="buy", quantity=D("2"), price=D("100"))
    assert p.quantity == D("2") and p.average_price == D("100") and p.realized_pnl == 0


def test_add_to_long_then_weighted_average():
    p = apply_fill(PositionState(), side="buy", quantity=D("1"), price=D("100"))
    p = apply_fill(p, side="buy", quantity=D("3"), price=D("200"))
    assert p.quantity == D("4") and p.average_price == D("175")


def test_partial_close_then_realized_and_average_kept():
    p = apply_fill(PositionState(), side="buy", quantity=D("4"), price=D("100"))
    p = apply_fill(p, side="sell", quantity=D("1"), price=D("110"))
    assert p.quantity == D("3") and p.average_price == D("100")
    assert p.realized_pnl == D("10")


def test_flip_long_to_short_then_new_average_at_fill():
    p = apply_fill(PositionState(), side="buy", quantity=D("1"), price=D("100"))
    p = apply_fill(p, side="sell", quantity=D("3"), price=D("90"))
    assert p.quantity == D("-2") and p.average_price == D("90")
    assert p.realized_pnl == D("-10")


def test_short_then_cover_lower_then_profit():
    p = apply_fill(PositionState(), side="sell", quantity=D("2"), price=D("100"))
    p = apply_fill(p, side="buy", quantity=D("2"), price=D("80"), fee_quote=D("0.5"))
    assert p.quantity == 0 and p.average_price is None
    assert p.realized_pnl == D("40") and p.fees == D("0.5")


def test_unrealized_against_mark():
    p = apply_fill(PositionState(), side="sell", quantity=D("2"), price=D("100"))
    assert p.unrealized(D("90")) == D("20")
    assert p.unrealized(None) is None


def test_non_positive_fill_then_error():
    with pytest.raises(ValueError):
        apply_fill(PositionState(), side="buy", quantity=D("0"), price=D("1"))


fills = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.integers(min_value=1, max_value=50),
        st.integers(min_value=50, max_value=150),
    ),
    min_size=1,
    max_size=30,
)


@given(fills)
def test_realized_plus_unrealized_equals_cash_pnl(seq):
    # Arrange: cash flow accounting as the independent oracle
    p, cash = PositionState(), D(0)
    for side, qty, price in seq:
        p = apply_fill(p, side=side, quantity=D(qty), price=D(price))
        cash += D(qty) * D(price) * (-1 if side == "buy" else 1)
    mark = D(100)
    # Assert: total P&L is the same whichever way it is computed (to rounding)
    total = p.realized_pnl + (p.unrealized(mark) or 0)
    assert abs(total - (cash + p.quantity * mark)) < D("1e-6")
