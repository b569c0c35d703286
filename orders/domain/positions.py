"""Position and realized P&L arithmetic, pure.

A position is a signed quantity with an average entry price. A fill in the direction
of the position (or from flat) extends it at a new average price; a fill against it
closes ``min(fill, |position|)`` at the fill price, realizing
``closed * (fill_price - average) * sign(position)``, and any excess opens a new
position on the other side at the fill price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class PositionState:
    quantity: Decimal = ZERO
    average_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO

    def unrealized(self, mark: Decimal | None) -> Decimal | None:
        if not self.quantity:
            return ZERO
        if mark is None or self.average_price is None:
            return None
        return (mark - self.average_price) * self.quantity


def _round(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1e-12"))


def apply_fill(
    position: PositionState,
    *,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fee_quote: Decimal = ZERO,
) -> PositionState:
    """The position after a fill of ``quantity`` at ``price`` (``side`` buy or sell)."""
    if quantity <= 0 or price <= 0:
        raise ValueError(f"fill must have positive quantity and price: {quantity}@{price}")
    signed = quantity if side == "buy" else -quantity
    qty, avg, realized = position.quantity, position.average_price, position.realized_pnl
    fees = position.fees + fee_quote
    if qty == 0 or (qty > 0) == (signed > 0):
        new_qty = qty + signed
        cost = abs(qty) * (avg or ZERO) + quantity * price
        return PositionState(new_qty, _round(cost / abs(new_qty)), realized, fees)
    closed = min(quantity, abs(qty))
    direction = 1 if qty > 0 else -1
    realized += closed * (price - (avg or price)) * direction
    new_qty = qty + signed
    if new_qty == 0:
        new_avg = None
    elif (new_qty > 0) == (qty > 0):
        new_avg = avg  # partly closed: the rest keeps its entry price
    else:
        new_avg = price  # flipped: the new side opened at this fill
    return PositionState(new_qty, new_avg, _round(realized), fees)
