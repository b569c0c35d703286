"""The risk engine: gather a snapshot from the database and Redis, evaluate the pure
checks of ``risk/checks.py`` on it, and react to fills.

Pre-trade (``check_new_order``, ``check_amend``) runs inside the order's transaction:

1. lock the account's ``AccountRisk`` row (``SELECT ... FOR UPDATE``): a second order of
   the same account waits here until the first commits, then sees it as working, so two
   concurrent orders cannot both pass a position, exposure or open-order limit that
   only one of them fits;
2. read the limits, trading states and restrictions that apply (from the database, on
   every order: a change made anywhere applies to the very next order everywhere);
3. read the account's working and recent orders (plus our resting orders on the other
   side of the book at the same venue), and its positions, in two queries;
4. read reference prices and marks from Redis (written by ``oms venuestream``);
5. sum all of that into a frozen ``Snapshot`` and evaluate every check on it.

Post-trade (``after_fill``) runs in the fill's transaction: a position beyond the max
position, or a day's loss beyond the daily loss limit, moves the scope to REDUCING or
HALTED (the limit's ``breach_action``) through ``risk.services.trading_state_set``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from risk import checks
from risk.checks import LimitKind, LimitRow, Limits, Snapshot, StateRow

log = logging.getLogger(__name__)

ZERO = Decimal(0)
ONE_SECOND = timedelta(seconds=1)
LIVE_STATUSES = (
    "PENDING_NEW",
    "SUBMITTED",
    "ACCEPTED",
    "PARTIALLY_FILLED",
    "PENDING_CANCEL",
    "PENDING_REPLACE",
)
_LIVE = frozenset(LIVE_STATUSES)

# The engine's clocks; tests replace them.
clock: Callable[[], datetime] = timezone.now
wall_clock: Callable[[], float] = time.time


# --- Market data ------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketData:
    reference_price: Decimal | None
    reference_age_s: float | None
    marks: dict[str, Decimal]


def book_key(venue: str, symbol: str) -> str:
    return f"oms:book:{venue}:{symbol}"


def mark_key(symbol: str) -> str:
    return f"oms:mark:{symbol}"


def read_market_data(venue_name: str | None, symbol: str, symbols: Iterable[str]) -> MarketData:
    """The order venue's book mid (with its age) as reference, and marks for ``symbols``.

    Without a book from the order's venue, the symbol's mark is the reference with an
    unknown age (stale for market orders). Redis unreachable: no market data.
    """
    from omsweb.redis_client import client

    others = sorted(set(symbols) | {symbol})
    keys = [book_key(venue_name or "", symbol)] + [mark_key(s) for s in others]
    try:
        raw = client().mget(keys)
    except Exception:  # no market data is a denial for what needs it, not a crash
        log.warning("risk: market data unavailable from Redis", exc_info=True)
        return MarketData(None, None, {})
    marks: dict[str, Decimal] = {}
    for sym, value in zip(others, raw[1:], strict=True):
        if value is not None:
            try:
                marks[sym] = Decimal(value.decode())
            except (ArithmeticError, ValueError):
                continue
    ref: Decimal | None = None
    age: float | None = None
    if raw[0] is not None:
        try:
            book = json.loads(raw[0])
            ref = Decimal(str(book["mid"]))
            age = max(0.0, wall_clock() - float(book["ts"]))
        except (ArithmeticError, KeyError, TypeError, ValueError):
            ref, age = None, None
    if ref is None and symbol in marks:
        ref, age = marks[symbol], None
    if ref is not None:
        marks.setdefault(symbol, ref)
    return MarketData(ref, age, marks)


# --- Gathering --------------------------------------------------------------------------


def lock_account(account_id: int) -> Any:
    """The account's risk row, locked until the transaction ends (created if missing)."""
    from risk.models import AccountRisk

    row = AccountRisk.objects.select_for_update().filter(account_id=account_id).first()
    if row is None:
        AccountRisk.objects.bulk_create([AccountRisk(account_id=account_id)], ignore_conflicts=True)
        row = AccountRisk.objects.select_for_update().get(account_id=account_id)
    return row


def applicable_limits(
    *, account_id: int, account_code: str, instrument_id: int, symbol: str
) -> dict[str, LimitRow]:
    from risk.models import RiskLimit

    rows = RiskLimit.objects.filter(
        Q(account_id=account_id) | Q(account__isnull=True),
        Q(instrument_id=instrument_id) | Q(instrument__isnull=True),
    ).values_list("pk", "kind", "value", "account_id", "instrument_id", "breach_action")
    return checks.resolve_limits(
        LimitRow(
            kind=kind,
            value=value,
            account=account_code if acc else None,
            symbol=symbol if ins else None,
            breach_action=action,
            limit_id=pk,
        )
        for pk, kind, value, acc, ins, action in rows
    )


def applicable_states(
    *,
    account_id: int,
    account_code: str,
    instrument_id: int,
    symbol: str,
    venue_id: int | None,
    venue_name: str | None,
) -> list[StateRow]:
    from risk.models import TradingState

    rows = (
        TradingState.objects.filter(
            Q(scope="global")
            | Q(scope="venue", venue_id=venue_id)
            | Q(scope="symbol", instrument_id=instrument_id)
            | Q(scope="account", account_id=account_id, instrument__isnull=True)
            | Q(scope="account", account_id=account_id, instrument_id=instrument_id)
        )
        .exclude(state="ACTIVE")
        .values_list("scope", "state", "reason", "instrument_id")
    )
    out = []
    for scope, state, reason, ins in rows:
        if scope == "global":
            label, rank = "global", 0
        elif scope == "venue":
            label, rank = f"venue {venue_name}", 1
        elif scope == "symbol":
            label, rank = f"symbol {symbol}", 1
        elif ins is None:
            label, rank = f"account {account_code}", 2
        else:
            label, rank = f"account {account_code} {symbol}", 3
        out.append(StateRow(state=state, label=label, reason=reason, specificity=rank))
    return out


def restriction_reason(*, account_id: int, instrument_id: int) -> str:
    from risk.models import Restriction

    reason = (
        Restriction.objects.filter(instrument_id=instrument_id)
        .filter(Q(account__isnull=True) | Q(account_id=account_id))
        .values_list("reason", flat=True)
        .first()
    )
    return "" if reason is None else (reason or "restricted")


def _positions(account_id: int) -> list[tuple[Any, ...]]:
    from orders.models import Position

    return list(
        Position.objects.filter(account_id=account_id).values_list(
            "instrument_id",
            "instrument__symbol",
            "quantity",
            "average_price",
            "realized_pnl",
            "fees",
            "mark_price",
        )
    )


def _value_at(symbol: str, marks: dict[str, Decimal], *fallbacks: Decimal | None) -> Decimal:
    mark = marks.get(symbol)
    if mark is not None:
        return mark
    for value in fallbacks:
        if value is not None:
            return value
    return ZERO


def pnl_of(positions: list[tuple[Any, ...]], marks: dict[str, Decimal]) -> Decimal:
    """Realized - fees + unrealized of an account's positions at ``marks``."""
    total = ZERO
    for _iid, symbol, qty, avg, realized, fees, mark_price in positions:
        total += realized - fees
        if qty and avg is not None:
            total += (_value_at(symbol, marks, mark_price, avg) - avg) * qty
    return total


def account_pnl(account_id: int) -> Decimal:
    """The account's P&L now (marks from Redis, else the positions' last marks)."""
    positions = _positions(account_id)
    symbols = [row[1] for row in positions if row[2]]
    marks = read_market_data(None, symbols[0], symbols).marks if symbols else {}
    return pnl_of(positions, marks)


@dataclass(frozen=True)
class OrderTerms:
    """What is checked: a new order, or a working order as an amend would leave it."""

    side: str
    type: str
    quantity: Decimal
    leaves: Decimal
    price: Decimal | None
    is_amend: bool


def gather(order: Any, terms: OrderTerms) -> Snapshot:
    """Read everything the checks need for ``order`` (a row: new, or being amended) and
    sum it into a ``Snapshot``. Must run in the order's transaction: it takes the
    account's risk lock."""
    from orders.models import Order

    account = order.account
    instrument = order.instrument
    venue = order.venue
    account_id, instrument_id = account.pk, instrument.pk
    symbol = instrument.symbol
    venue_name = venue.name if venue is not None else None
    now = clock()

    risk_row = lock_account(account_id)
    resolved = applicable_limits(
        account_id=account_id, account_code=account.code, instrument_id=instrument_id, symbol=symbol
    )
    limits = Limits.from_resolved(resolved)
    state = checks.effective_state(
        applicable_states(
            account_id=account_id,
            account_code=account.code,
            instrument_id=instrument_id,
            symbol=symbol,
            venue_id=order.venue_id,
            venue_name=venue_name,
        )
    )
    restricted = restriction_reason(account_id=account_id, instrument_id=instrument_id)

    dup_window = limits.duplicate_window_s or ZERO
    dup_cutoff = now - timedelta(seconds=float(dup_window))
    rate_cutoff = now - ONE_SECOND
    recent_cutoff = min(dup_cutoff, rate_cutoff)
    opposite = "sell" if terms.side == "buy" else "buy"
    rows = (
        Order.objects.filter(
            Q(account_id=account_id, status__in=LIVE_STATUSES)
            | Q(account_id=account_id, created_at__gte=recent_cutoff)
            | Q(
                venue_id=order.venue_id,
                instrument_id=instrument_id,
                side=opposite,
                status__in=LIVE_STATUSES,
            )
        )
        .exclude(pk=order.pk)
        .values_list(
            "account_id",
            "instrument_id",
            "instrument__symbol",
            "venue_id",
            "side",
            "type",
            "quantity",
            "filled_quantity",
            "price",
            "status",
            "created_at",
        )
    )
    positions = _positions(account_id)
    symbols = {row[1] for row in positions if row[2]}
    rows = list(rows)
    symbols.update(r[2] for r in rows if r[0] == account_id and r[9] in _LIVE)
    market = read_market_data(venue_name, symbol, symbols)
    marks = market.marks

    open_orders = orders_last_second = duplicates = 0
    working_same_side = exposure = ZERO
    own_best: Decimal | None = None
    own_market = False
    buy = terms.side == "buy"
    for acc, ins, sym, ven, side, typ, qty, filled, price, status, created in rows:
        live = status in _LIVE
        if acc == account_id:
            if live:
                open_orders += 1
                leaves = qty - filled
                exposure += leaves * (price if price is not None else marks.get(sym, ZERO))
                if ins == instrument_id and side == terms.side:
                    working_same_side += leaves
            if status != "DENIED":
                if created >= rate_cutoff:
                    orders_last_second += 1
                if (
                    created >= dup_cutoff
                    and ins == instrument_id
                    and side == terms.side
                    and typ == terms.type
                    and qty == terms.quantity
                    and price == terms.price
                ):
                    duplicates += 1
        if live and ven == order.venue_id and ins == instrument_id and side == opposite:
            if typ == "market" or price is None:
                own_market = True
            elif own_best is None or (price < own_best if buy else price > own_best):
                own_best = price

    position = ZERO
    for iid, sym, qty, avg, _realized, _fees, mark_price in positions:
        if iid == instrument_id:
            position = qty
        if qty:
            exposure += abs(qty) * _value_at(sym, marks, mark_price, avg)

    pnl = pnl_of(positions, marks)
    today = now.date()
    if risk_row.pnl_day != today:
        # the first look at this account today: its day's P&L starts here
        risk_row.pnl_day = today
        risk_row.day_start_pnl = pnl
        risk_row.save(update_fields=["pnl_day", "day_start_pnl", "updated_at"])

    return Snapshot.build(
        symbol=symbol,
        side_sign=1 if buy else -1,
        is_market=terms.type == "market",
        quantity=terms.quantity,
        leaves=terms.leaves,
        price=terms.price,
        is_amend=terms.is_amend,
        tick_size=instrument.tick_size,
        lot_size=instrument.lot_size,
        min_notional=instrument.min_notional,
        instrument_enabled=instrument.enabled,
        restricted=restricted,
        trading_state=state,
        limits=limits,
        limit_scope=f"{account.code} {symbol}",
        reference_price=market.reference_price,
        reference_age_s=market.reference_age_s,
        position=position,
        working_same_side=working_same_side,
        gross_exposure=exposure,
        open_orders=open_orders,
        orders_last_second=orders_last_second,
        duplicates_in_window=duplicates,
        own_opposite_best=own_best,
        own_opposite_market=own_market,
        daily_pnl=pnl - risk_row.day_start_pnl,
    )


# --- Entry points -----------------------------------------------------------------------


def check_new_order(order: Any) -> list[dict[str, Any]]:
    """Pre-trade check of a just-inserted PENDING_NEW order (hook in
    ``orders.services.order_submit``): every failing reason, empty when it may go."""
    terms = OrderTerms(
        side=order.side,
        type=order.type,
        quantity=order.quantity,
        leaves=order.quantity,
        price=order.price,
        is_amend=False,
    )
    return [r.as_dict() for r in checks.evaluate(gather(order, terms))]


def check_amend(order: Any, *, quantity: Decimal, price: Decimal | None) -> list[dict[str, Any]]:
    """Pre-trade check of an amend (hook in ``orders.services.order_amend``): the order
    as it would be afterwards, without counting it twice; rate, duplicate and open-order
    checks do not apply (an amend is not a new order)."""
    terms = OrderTerms(
        side=order.side,
        type=order.type,
        quantity=quantity,
        leaves=quantity - order.filled_quantity,
        price=price,
        is_amend=True,
    )
    return [r.as_dict() for r in checks.evaluate(gather(order, terms))]


# --- Post-trade -------------------------------------------------------------------------


def after_fill(*, position: Any, fill: Any) -> None:
    """After a fill updated ``position`` (in the fill's transaction): escalate the scope
    of a breached max position (account + symbol) or daily loss (account) to the
    limit's breach action. A failure here is logged and never loses the fill."""
    try:
        with transaction.atomic():
            _after_fill(position, fill)
    except Exception:
        log.exception("risk: post-trade check after fill %s failed", getattr(fill, "pk", None))


def _after_fill(position: Any, fill: Any) -> None:
    from risk.models import AccountRisk, BreachAction, StateScope
    from risk.services import SYSTEM, trading_state_set

    account, instrument = fill.account, fill.instrument
    resolved = applicable_limits(
        account_id=account.pk,
        account_code=account.code,
        instrument_id=instrument.pk,
        symbol=instrument.symbol,
    )
    pos_limit = resolved.get(LimitKind.MAX_POSITION.value)
    breach = checks.position_breach(position.quantity, pos_limit.value if pos_limit else None)
    if breach is not None and pos_limit is not None:
        trading_state_set(
            actor=SYSTEM,
            scope=StateScope.ACCOUNT,
            account=account,
            instrument=instrument,
            state=pos_limit.breach_action or BreachAction.REDUCING,
            reason=f"after fill {fill.venue_trade_id}: {breach.message} ({pos_limit.scope_label})",
            escalate_only=True,
            detail={"breach": breach.as_dict(), "fill_id": fill.pk},
        )
    loss_limit = resolved.get(LimitKind.MAX_DAILY_LOSS.value)
    if loss_limit is None:
        return
    pnl = account_pnl(account.pk)
    start = (
        AccountRisk.objects.filter(account_id=account.pk, pnl_day=clock().date())
        .values_list("day_start_pnl", flat=True)
        .first()
    )
    breach = checks.daily_loss_breach(pnl - (start if start is not None else pnl), loss_limit.value)
    if breach is not None:
        trading_state_set(
            actor=SYSTEM,
            scope=StateScope.ACCOUNT,
            account=account,
            state=loss_limit.breach_action or BreachAction.REDUCING,
            reason=f"after fill {fill.venue_trade_id}: {breach.message} ({loss_limit.scope_label})",
            escalate_only=True,
            detail={"breach": breach.as_dict(), "fill_id": fill.pk},
        )
