"""Pre-trade risk checks: small pure functions over a frozen snapshot.

The engine (``risk/engine.py``) gathers everything a decision needs (the order, the
resolved limits, the effective trading state, the reference price, the account's
positions, working and recent orders) into one ``Snapshot`` with the aggregates already
summed, then ``evaluate`` runs every check on it and returns every failing ``Reason``.
Nothing here imports Django, reads a clock or does I/O, so the same code runs in the web
process, in workers and in the backtester, and evaluating all checks is a few
microseconds of Decimal arithmetic (``bench/risk.py`` measures it).

A check returns ``None`` or a ``Reason`` whose message carries the numbers, e.g.
``MAX_ORDER_NOTIONAL: notional=125000 > max=100000``. A limit that is not configured
for the order's scope is never read as "no limit": ``NO_LIMIT`` denies the order
(fail closed).

Limits are resolved most-specific-first (account+symbol > account > symbol > global),
per kind, by ``resolve_limits``; trading states combine by ``effective_state``: the most
severe state of every scope that covers the order wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)
HUNDRED = Decimal(100)


ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"


class TradingStateValue(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that reduce the position pass
    HALTED = "HALTED"  # nothing passes; working orders are canceled


SEVERITY: dict[str, int] = {
    TradingStateValue.ACTIVE: 0,
    TradingStateValue.REDUCING: 1,
    TradingStateValue.HALTED: 2,
}


class LimitKind(StrEnum):
    """Every kind must resolve to a value for the order's scope, else NO_LIMIT."""

    MAX_ORDER_QUANTITY = "max_order_quantity"  # base units, per order
    MAX_ORDER_NOTIONAL = "max_order_notional"  # quote, per order
    MAX_POSITION = "max_position"  # base units, |position + same-side working + order|
    MAX_GROSS_EXPOSURE = "max_gross_exposure"  # quote, per account: |positions| + working
    MAX_OPEN_ORDERS = "max_open_orders"  # per account
    MAX_ORDERS_PER_SECOND = "max_orders_per_second"  # per account, new orders
    MAX_DUPLICATE_ORDERS = "max_duplicate_orders"  # identical orders within the window
    DUPLICATE_WINDOW_S = "duplicate_window_s"  # seconds
    PRICE_COLLAR_PCT = "price_collar_pct"  # max % distance of a limit price from reference
    MAX_REFERENCE_AGE_S = "max_reference_age_s"  # older reference is stale
    MAX_DAILY_LOSS = "max_daily_loss"  # quote, realized + unrealized since the day began


INTEGER_KINDS = frozenset(
    {LimitKind.MAX_OPEN_ORDERS, LimitKind.MAX_ORDERS_PER_SECOND, LimitKind.MAX_DUPLICATE_ORDERS}
)
# Kinds whose breach after a fill moves a scope to REDUCING or HALTED (post-trade).
BREACH_KINDS = frozenset({LimitKind.MAX_POSITION, LimitKind.MAX_DAILY_LOSS})


# --- Limit resolution -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitRow:
    """A configured limit: ``account``/``symbol`` None means "any"."""

    kind: str
    value: Decimal
    account: str | None = None
    symbol: str | None = None
    breach_action: str = ""
    limit_id: int | None = None

    @property
    def specificity(self) -> int:
        return (2 if self.account is not None else 0) + (1 if self.symbol is not None else 0)

    @property
    def scope_label(self) -> str:
        if self.account is not None and self.symbol is not None:
            return f"account {self.account} {self.symbol}"
        if self.account is not None:
            return f"account {self.account}"
        if self.symbol is not None:
            return f"symbol {self.symbol}"
        return "global"


def resolve_limits(rows: Iterable[LimitRow]) -> dict[str, LimitRow]:
    """Per kind, the most specific row: account+symbol > account > symbol > global.

    ``rows`` must already be the rows that apply to the order's account and symbol.
    """
    out: dict[str, LimitRow] = {}
    for row in rows:
        best = out.get(row.kind)
        if best is None or row.specificity > best.specificity:
            out[row.kind] = row
    return out


@dataclass(frozen=True, slots=True)
class Limits:
    """Resolved limit values for one order; ``None`` = not configured (fail closed)."""

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_gross_exposure: Decimal | None = None
    max_open_orders: Decimal | None = None
    max_orders_per_second: Decimal | None = None
    max_duplicate_orders: Decimal | None = None
    duplicate_window_s: Decimal | None = None
    price_collar_pct: Decimal | None = None
    max_reference_age_s: Decimal | None = None
    max_daily_loss: Decimal | None = None
    # the kinds left unconfigured, computed once here rather than on every evaluation
    missing: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        missing = tuple(kind.value for kind in LimitKind if getattr(self, kind.value) is None)
        object.__setattr__(self, "missing", missing)

    @classmethod
    def from_resolved(cls, resolved: dict[str, LimitRow]) -> Limits:
        return cls(**{kind.value: _value(resolved, kind) for kind in LimitKind})


def _value(resolved: dict[str, LimitRow], kind: LimitKind) -> Decimal | None:
    row = resolved.get(kind.value)
    return None if row is None else row.value


# --- Trading state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateRow:
    """A trading state set at one scope (``label`` says which, e.g. ``venue sim-a``)."""

    state: str
    label: str
    reason: str = ""
    specificity: int = 0


ACTIVE_ROW = StateRow(state=ACTIVE, label="global")


def effective_state(rows: Iterable[StateRow]) -> StateRow:
    """The most severe state among the scopes covering an order (the most specific on a
    tie, so the message names the narrowest scope that stops it)."""
    best = ACTIVE_ROW
    for row in rows:
        rank, best_rank = SEVERITY.get(row.state, 2), SEVERITY.get(best.state, 2)
        if rank > best_rank or (rank == best_rank and rank and row.specificity > best.specificity):
            best = row
    return best


# --- The snapshot -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the checks read, gathered (and summed) by the engine beforehand.

    Quantities are in base units, money in the quote currency; ``side_sign`` is +1 for a
    buy and -1 for a sell. Aggregates exclude the order being checked.
    """

    # the order (for an amend: as it would be after the amend)
    symbol: str
    side_sign: int
    is_market: bool
    quantity: Decimal  # order size
    leaves: Decimal  # what can still fill: quantity (new) or quantity - filled (amend)
    price: Decimal | None
    is_amend: bool = False
    # instrument
    tick_size: Decimal = ZERO
    lot_size: Decimal = ZERO
    min_notional: Decimal = ZERO
    instrument_enabled: bool = True
    restricted: str = ""  # reason when restricted, else ""
    # controls
    trading_state: StateRow = ACTIVE_ROW
    limits: Limits = field(default_factory=Limits)
    limit_scope: str = ""  # e.g. "DEMO BTC/USDT", for NO_LIMIT messages
    # market data
    reference_price: Decimal | None = None
    reference_age_s: float | None = None  # None with a price: age unknown (treated stale)
    # why the reference is not to be trusted (the order's venue has no LIVE book, or no
    # venue is LIVE), naming the venue and its market-data state; None when it is LIVE
    reference_problem: str | None = None
    # the account, summed by the engine
    position: Decimal = ZERO  # signed net position in this instrument
    working_same_side: Decimal = ZERO  # leaves of same-side working orders, this symbol
    gross_exposure: Decimal = ZERO  # |positions| * mark + working notional, all symbols
    open_orders: int = 0
    orders_last_second: int = 0
    duplicates_in_window: int = 0  # identical orders within the duplicate window
    # "ours" for self-trade prevention: the account's own resting orders and those of
    # every account in its STP group (the accounts of one owner), same venue and symbol
    own_opposite_best: Decimal | None = None  # our best resting opposite price
    own_opposite_market: bool = False  # one of ours on the other side is a market order
    stp_group: str = ""  # the account's STP group ("" = the account alone)
    daily_pnl: Decimal = ZERO  # realized - fees + unrealized since the day began
    # derived once by ``build``
    notional: Decimal | None = None  # quantity * (price, else reference)
    reduces: bool = False  # it (and same-side working orders) only reduce the position

    @classmethod
    def build(cls, **fields: object) -> Snapshot:
        """A snapshot with ``notional`` and ``reduces`` derived from the other fields."""
        get = fields.get
        is_market = bool(get("is_market", False))
        price = get("reference_price") if is_market else get("price")
        quantity = get("quantity")
        assert isinstance(quantity, Decimal)
        notional = price * quantity if isinstance(price, Decimal) else None
        position = get("position", ZERO)
        side_sign = get("side_sign")
        leaves = get("leaves", quantity)
        working = get("working_same_side", ZERO)
        assert isinstance(position, Decimal) and isinstance(side_sign, int)
        assert isinstance(leaves, Decimal) and isinstance(working, Decimal)
        reduces = position != 0 and (position > 0) != (side_sign > 0)
        reduces = reduces and working + leaves <= abs(position)
        return cls(**{"leaves": leaves, **fields, "notional": notional, "reduces": reduces})  # type: ignore[arg-type]


# --- Reasons ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    check: str
    message: str
    limit: str | None = None
    value: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "check": self.check,
            "message": self.message,
            "limit": self.limit,
            "value": self.value,
        }


def fmt(value: Decimal | int | float | None) -> str:
    """A number as plain text: no exponent, no trailing zeros."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return str(value)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _reason(check: str, detail: str, limit: Decimal | int | None, value: object) -> Reason:
    limit_text = None if limit is None else fmt(limit)
    value_text = fmt(value) if isinstance(value, Decimal | int | float) else str(value)
    return Reason(check, f"{check}: {detail}", limit_text, value_text)


# --- The checks -------------------------------------------------------------------------
# Each takes the snapshot and returns None or one Reason. Cheap first-line tests keep the
# passing path to a few comparisons; strings are only built for a failure.


def check_trading_state(s: Snapshot) -> Reason | None:
    st = s.trading_state
    if st.state == ACTIVE or (st.state == REDUCING and s.reduces):
        return None
    why = f" ({st.reason})" if st.reason else ""
    if st.state == REDUCING:
        detail = f"{st.label} is REDUCING{why}; only orders that reduce the position pass"
    else:
        detail = f"{st.label} is {st.state}{why}"
    return _reason("TRADING_STATE", detail, None, st.state)


def check_instrument(s: Snapshot) -> Reason | None:
    if s.instrument_enabled and not s.restricted:
        return None
    if not s.instrument_enabled:
        return _reason("INSTRUMENT_DISABLED", f"{s.symbol} is disabled", None, s.symbol)
    return _reason("RESTRICTED", f"{s.symbol} is restricted: {s.restricted}", None, s.symbol)


def check_limits_configured(s: Snapshot) -> Reason | None:
    missing = s.limits.missing
    if not missing:
        return None
    names = ", ".join(missing)
    return _reason("NO_LIMIT", f"no limit configured for {s.limit_scope}: {names}", None, names)


def check_tick_size(s: Snapshot) -> Reason | None:
    if s.price is None or not s.tick_size or not s.price % s.tick_size:
        return None
    return _reason(
        "TICK_SIZE", f"price={fmt(s.price)} is not a multiple of tick={fmt(s.tick_size)}",
        s.tick_size, s.price,
    )  # fmt: skip


def check_lot_size(s: Snapshot) -> Reason | None:
    if not s.lot_size or not s.quantity % s.lot_size:
        return None
    return _reason(
        "LOT_SIZE", f"quantity={fmt(s.quantity)} is not a multiple of lot={fmt(s.lot_size)}",
        s.lot_size, s.quantity,
    )  # fmt: skip


def check_min_notional(s: Snapshot) -> Reason | None:
    if s.notional is None or s.notional >= s.min_notional:
        return None
    return _reason(
        "MIN_NOTIONAL", f"notional={fmt(s.notional)} < min={fmt(s.min_notional)}",
        s.min_notional, s.notional,
    )  # fmt: skip


def check_max_order_quantity(s: Snapshot) -> Reason | None:
    limit = s.limits.max_order_quantity
    if limit is None or s.quantity <= limit:
        return None
    return _reason(
        "MAX_ORDER_QUANTITY", f"quantity={fmt(s.quantity)} > max={fmt(limit)}", limit, s.quantity
    )


def check_max_order_notional(s: Snapshot) -> Reason | None:
    limit = s.limits.max_order_notional
    if limit is None or s.notional is None or s.notional <= limit:
        return None
    return _reason(
        "MAX_ORDER_NOTIONAL", f"notional={fmt(s.notional)} > max={fmt(limit)}", limit, s.notional
    )


def check_reference_price(s: Snapshot) -> Reason | None:
    """Market orders need a fresh reference price from LIVE market data (its absence,
    or the order's venue's book not LIVE, blocks them)."""
    if not s.is_market:
        return None
    max_age = s.limits.max_reference_age_s
    if s.reference_problem is not None:
        return _reason(
            "REFERENCE_PRICE",
            f"stale reference for {s.symbol}: {s.reference_problem}; a market order needs"
            " LIVE market data",
            max_age,
            "not LIVE",
        )
    if s.reference_price is None:
        return _reason(
            "REFERENCE_PRICE", f"no reference price for {s.symbol}; a market order needs one",
            max_age, "missing",
        )  # fmt: skip
    age = s.reference_age_s
    if max_age is not None and (age is None or age > max_age):
        age_text = "unknown" if age is None else f"{age:.1f}s"
        return _reason(
            "REFERENCE_PRICE",
            f"reference price for {s.symbol} is stale: age={age_text} > max={fmt(max_age)}s",
            max_age,
            "unknown" if age is None else round(age, 3),
        )
    return None


def check_price_collar(s: Snapshot) -> Reason | None:
    """A limit price too far from the reference (fresh or stale) is a fat finger. With no
    reference at all there is nothing to compare with; the order's other checks apply."""
    collar, ref, price = s.limits.price_collar_pct, s.reference_price, s.price
    if collar is None or ref is None or price is None or not ref:
        return None
    if abs(price - ref) * HUNDRED <= collar * ref:
        return None
    distance = (abs(price - ref) * HUNDRED / ref).quantize(Decimal("0.01"))
    return _reason(
        "PRICE_COLLAR",
        f"price={fmt(price)} is {fmt(distance)}% from reference={fmt(ref)} > max={fmt(collar)}%",
        collar,
        distance,
    )


def check_max_position(s: Snapshot) -> Reason | None:
    limit = s.limits.max_position
    if limit is None or s.reduces:
        return None
    projected = s.position + s.side_sign * (s.working_same_side + s.leaves)
    if abs(projected) <= limit:
        return None
    return _reason(
        "MAX_POSITION",
        f"position={fmt(s.position)} + working={fmt(s.side_sign * s.working_same_side)} + "
        f"order={fmt(s.side_sign * s.leaves)} = {fmt(projected)}; |{fmt(projected)}| > "
        f"max={fmt(limit)}",
        limit,
        abs(projected),
    )


def check_max_gross_exposure(s: Snapshot) -> Reason | None:
    limit = s.limits.max_gross_exposure
    if limit is None or s.reduces or s.notional is None:
        return None
    leaves_notional = s.notional if s.leaves == s.quantity else s.notional * s.leaves / s.quantity
    exposure = s.gross_exposure + leaves_notional
    if exposure <= limit:
        return None
    return _reason(
        "MAX_GROSS_EXPOSURE",
        f"exposure={fmt(s.gross_exposure)} + order={fmt(leaves_notional)} = "
        f"{fmt(exposure)} > max={fmt(limit)}",
        limit,
        exposure,
    )


def check_max_open_orders(s: Snapshot) -> Reason | None:
    limit = s.limits.max_open_orders
    if limit is None or s.is_amend or s.open_orders + 1 <= limit:
        return None
    return _reason(
        "MAX_OPEN_ORDERS", f"open_orders={s.open_orders} + 1 > max={fmt(limit)}",
        limit, s.open_orders + 1,
    )  # fmt: skip


def check_order_rate(s: Snapshot) -> Reason | None:
    limit = s.limits.max_orders_per_second
    if limit is None or s.is_amend or s.orders_last_second + 1 <= limit:
        return None
    return _reason(
        "ORDER_RATE", f"orders_last_1s={s.orders_last_second} + 1 > max={fmt(limit)}/s",
        limit, s.orders_last_second + 1,
    )  # fmt: skip


def check_duplicate(s: Snapshot) -> Reason | None:
    limit = s.limits.max_duplicate_orders
    if limit is None or s.is_amend or s.duplicates_in_window + 1 <= limit:
        return None
    window = s.limits.duplicate_window_s
    return _reason(
        "DUPLICATE_ORDER",
        f"{s.duplicates_in_window + 1} identical orders within {fmt(window)}s > max={fmt(limit)}",
        limit,
        s.duplicates_in_window + 1,
    )


def check_self_trade(s: Snapshot) -> Reason | None:
    best = s.own_opposite_best
    if best is None and not s.own_opposite_market:
        return None
    if s.is_market or s.own_opposite_market:
        crosses = True
    else:
        assert s.price is not None and best is not None
        crosses = s.price >= best if s.side_sign > 0 else s.price <= best
    if not crosses:
        return None
    side = "buy" if s.side_sign > 0 else "sell"
    price = "market" if s.is_market else fmt(s.price)
    ours = "a market order" if best is None else f"price={fmt(best)}"
    group = f" (STP group {s.stp_group})" if s.stp_group else ""
    return _reason(
        "SELF_TRADE",
        f"{side} at {price} would cross our own resting order at {ours} on the same venue{group}",
        None,
        best if best is not None else "market",
    )


def check_daily_loss(s: Snapshot) -> Reason | None:
    limit = s.limits.max_daily_loss
    if limit is None or s.reduces or -s.daily_pnl <= limit:
        return None
    return _reason(
        "DAILY_LOSS", f"loss={fmt(-s.daily_pnl)} > max={fmt(limit)}", limit, -s.daily_pnl
    )


Check = Callable[[Snapshot], "Reason | None"]

# Every check, in the order reasons are reported.
CHECKS: tuple[Check, ...] = (
    check_trading_state,
    check_instrument,
    check_limits_configured,
    check_tick_size,
    check_lot_size,
    check_min_notional,
    check_max_order_quantity,
    check_max_order_notional,
    check_reference_price,
    check_price_collar,
    check_max_position,
    check_max_gross_exposure,
    check_max_open_orders,
    check_order_rate,
    check_duplicate,
    check_self_trade,
    check_daily_loss,
)


def evaluate(snapshot: Snapshot, checks: tuple[Check, ...] = CHECKS) -> list[Reason]:
    """Run every check; return every failing reason (empty: the order may go)."""
    reasons = []
    for check in checks:
        reason = check(snapshot)
        if reason is not None:
            reasons.append(reason)
    return reasons


# --- Post-trade ------------------------------------------------------------------------


def position_breach(position: Decimal, limit: Decimal | None) -> Reason | None:
    """After a fill: the net position beyond the max position."""
    if limit is None or abs(position) <= limit:
        return None
    return _reason(
        "MAX_POSITION", f"position={fmt(position)}; |{fmt(position)}| > max={fmt(limit)}",
        limit, abs(position),
    )  # fmt: skip


def daily_loss_breach(daily_pnl: Decimal, limit: Decimal | None) -> Reason | None:
    """After a fill: the day's loss beyond the daily loss limit."""
    if limit is None or -daily_pnl <= limit:
        return None
    return _reason("DAILY_LOSS", f"loss={fmt(-daily_pnl)} > max={fmt(limit)}", limit, -daily_pnl)
