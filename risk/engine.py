"""The risk engine: gather a snapshot from the database and Redis, evaluate the pure
checks of ``risk/checks.py`` on it, and react to fills.

Pre-trade (``check_new_order``, ``check_amend``) runs inside the order's transaction:

1. read the order's reference price (the consolidated mid of the LIVE venues, and the
   state of the order venue's book) and marks from Redis (written by ``oms
   marketdata``), before the lock, so nothing waits on Redis while holding it;
2. lock the account's ``AccountRisk`` row (``SELECT ... FOR UPDATE``): a second order of
   the same account waits here until the first commits, then sees it as working, so two
   concurrent orders cannot both pass a position, exposure or open-order limit that
   only one of them fits;
3. in one statement (``_GATHER_SQL``, sent with the lock as one query), read the limits,
   trading states and restriction that apply (from the database, on every order: a
   change made anywhere applies to the very next order everywhere), the account's
   positions, its working orders summed per symbol and side, its recent orders (rate,
   duplicates), and the resting orders on the other side at the same venue of the
   account or of any account in its self-trade prevention group (self-trade);
4. read the marks of other symbols held or working, if any;
5. sum all of that into a frozen ``Snapshot`` and evaluate every check on it.

Post-trade (``after_fill``) runs in the fill's transaction: a position beyond the max
position, or a day's loss beyond the daily loss limit, moves the scope to REDUCING or
HALTED (the limit's ``breach_action``) through ``risk.services.trading_state_set``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from orders.domain import lifecycle as lc
from risk import checks
from risk.checks import LimitRow, Limits, Snapshot, StateRow

log = logging.getLogger(__name__)

ZERO = Decimal(0)
# open orders count towards exposure and open-order limits
LIVE_STATUSES = lc.values(lc.OPEN_STATUSES)

# The engine's clocks; tests replace them.
clock: Callable[[], datetime] = timezone.now
wall_clock: Callable[[], float] = time.time


# --- Market data ------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketData:
    reference_price: Decimal | None
    reference_age_s: float | None
    marks: dict[str, Decimal]
    reference_problem: str | None = None  # see marketdata.consolidated.Reference


def mark_key(symbol: str) -> str:
    from marketdata.store import mark_key as key

    return key(symbol)


def read_marks(symbols: Iterable[str]) -> dict[str, Decimal]:
    """The marks of ``symbols`` that Redis has (none when Redis is unreachable)."""
    from omsweb.redis_client import client

    wanted = sorted(set(symbols))
    if not wanted:
        return {}
    try:
        raw = client().mget([mark_key(s) for s in wanted])
    except Exception:  # no market data is a denial for what needs it, not a crash
        log.warning("risk: market data unavailable from Redis", exc_info=True)
        return {}
    return _parse_marks(wanted, raw)


def _parse_marks(symbols: list[str], raw: list[Any]) -> dict[str, Decimal]:
    marks: dict[str, Decimal] = {}
    for sym, value in zip(symbols, raw, strict=True):
        if value is not None:
            try:
                marks[sym] = Decimal(value.decode())
            except (ArithmeticError, ValueError):
                continue
    return marks


def read_market_data(venue_name: str | None, symbol: str, symbols: Iterable[str]) -> MarketData:
    """The reference price of an order on ``symbol`` to ``venue_name`` (the consolidated
    mid of the LIVE venues, with what is wrong with it: ``marketdata.consolidated``'s
    ``reference``), and marks for ``symbols``. Redis unreachable: no market data."""
    from marketdata.consolidated import reference
    from marketdata.store import VENUES_KEY, read_books
    from omsweb.redis_client import client

    others = sorted(set(symbols) | {symbol})
    try:
        redis = client()
        # the venue set and the marks in one round trip, then the books (2, not 3)
        pipe = redis.pipeline(transaction=False)
        pipe.smembers(VENUES_KEY)
        pipe.mget([mark_key(s) for s in others])
        names, raw = pipe.execute()
        books = read_books(redis, [symbol], sorted(v.decode() for v in names))
    except Exception:  # no market data is a denial for what needs it, not a crash
        log.warning("risk: market data unavailable from Redis", exc_info=True)
        return MarketData(None, None, {}, "market data unavailable (Redis)")
    marks = _parse_marks(others, raw)
    ref = reference(symbol, books, venue_name, wall_clock())
    if ref.price is not None:
        marks.setdefault(symbol, ref.price)
    return MarketData(ref.price, ref.age_s, marks, ref.problem)


# --- Gathering --------------------------------------------------------------------------


@dataclass(frozen=True)
class DayStart:
    """Where the account's trading day began (from its locked ``AccountRisk`` row)."""

    pnl_day: date | None
    day_start_pnl: Decimal


_LOCK_SQL = (
    "SELECT pnl_day, day_start_pnl FROM risk_accountrisk WHERE account_id = %(a)s FOR UPDATE"
)
_CREATE_SQL = (
    "INSERT INTO risk_accountrisk (account_id, day_start_pnl, updated_at) "
    "VALUES (%(a)s, 0, now()) ON CONFLICT DO NOTHING"
)


def lock_account(account_id: int) -> DayStart:
    """Lock the account's risk row until the transaction ends (created if missing)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, {"a": account_id})
        row = cursor.fetchone()
        if row is None:
            cursor.execute(_CREATE_SQL, {"a": account_id})
            cursor.execute(_LOCK_SQL, {"a": account_id})
            row = cursor.fetchone()
    return DayStart(pnl_day=row[0], day_start_pnl=row[1])


def _lock_and_gather(params: dict[str, Any]) -> tuple[DayStart, list[tuple[Any, ...]]]:
    """Lock the account's risk row, then run ``_GATHER_SQL``: two statements sent as one
    query (one round trip, so the lock is held one round trip less). Each statement of
    a multi-statement query takes its own snapshot (READ COMMITTED), so the gather,
    running after the lock is granted, sees every order committed before it. Needs
    client-side parameter binding (Django's default for psycopg); with server-side
    binding, two round trips."""
    import psycopg
    from django.db import connection

    with connection.cursor() as cursor:
        if isinstance(cursor.cursor, psycopg.ClientCursor):
            cursor.execute(f"{_LOCK_SQL};\n{_GATHER_SQL}", params)
            row = cursor.fetchone()
            if row is not None and cursor.nextset():
                return DayStart(pnl_day=row[0], day_start_pnl=row[1]), cursor.fetchall()
            # No risk row yet (the account's first order): it is created below; what
            # the gather read without the lock is not used.
        risk_row = lock_account(params["a"])
        cursor.execute(_GATHER_SQL, params)
        return risk_row, cursor.fetchall()


def start_day(account_id: int, day: date, pnl: Decimal) -> None:
    """Record that the account's trading day ``day`` began at ``pnl`` (row locked)."""
    from risk.models import AccountRisk

    AccountRisk.objects.filter(account_id=account_id).update(
        pnl_day=day, day_start_pnl=pnl, updated_at=timezone.now()
    )


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


# A parent order and its children are counted once: the parent (its leaves cover what its
# children have working), never the children (W: exposure, open orders, same-side
# working; N: rate and duplicates). Self-trade (X) looks at the orders resting at the
# venue, children included.
# One statement reads everything after the lock: a round trip instead of six, no ORM
# query compilation on the order path. Every branch yields the same nine text columns;
# the first says what the row is. Parameters: a (account), i (instrument), v (venue),
# o (the order itself, excluded), side/opp/type/q/p (the terms), now, live (statuses).
_GATHER_SQL = """
SELECT 'L', kind, value::text, (account_id IS NOT NULL)::text,
       (instrument_id IS NOT NULL)::text, breach_action, id::text, NULL, NULL
  FROM risk_risklimit
 WHERE (account_id = %(a)s OR account_id IS NULL)
   AND (instrument_id = %(i)s OR instrument_id IS NULL)
UNION ALL
SELECT 'S', scope, state, reason, (instrument_id IS NOT NULL)::text, NULL, NULL, NULL, NULL
  FROM risk_tradingstate
 WHERE state <> 'ACTIVE'
   AND (scope = 'global'
        OR (scope = 'venue' AND venue_id = %(v)s)
        OR (scope = 'symbol' AND instrument_id = %(i)s)
        OR (scope = 'account' AND account_id = %(a)s
            AND (instrument_id IS NULL OR instrument_id = %(i)s)))
UNION ALL
(SELECT 'R', reason, NULL, NULL, NULL, NULL, NULL, NULL, NULL
   FROM risk_restriction
  WHERE instrument_id = %(i)s AND (account_id IS NULL OR account_id = %(a)s)
  LIMIT 1)
UNION ALL
SELECT 'P', s.symbol, p.quantity::text, p.average_price::text, p.realized_pnl::text,
       p.fees::text, p.mark_price::text, (p.instrument_id = %(i)s)::text, NULL
  FROM orders_position p JOIN orders_instrument s ON s.id = p.instrument_id
 WHERE p.account_id = %(a)s
UNION ALL
SELECT 'W', s.symbol, o.side, sum(o.quantity - o.filled_quantity)::text,
       sum((o.quantity - o.filled_quantity) * o.price)::text,
       sum(CASE WHEN o.price IS NULL THEN o.quantity - o.filled_quantity END)::text,
       count(*)::text, (o.instrument_id = %(i)s)::text, NULL
  FROM orders_order o JOIN orders_instrument s ON s.id = o.instrument_id
 WHERE o.account_id = %(a)s AND o.status = ANY(%(live)s) AND o.id <> %(o)s
   AND o.parent_id IS NULL
 GROUP BY s.symbol, o.side, o.instrument_id
UNION ALL
SELECT 'X', min(o.price)::text, max(o.price)::text,
       coalesce(bool_or(o.price IS NULL), false)::text, NULL, NULL, NULL, NULL, NULL
  FROM orders_order o
 WHERE o.venue_id = %(v)s AND o.instrument_id = %(i)s AND o.side = %(opp)s
   AND o.status = ANY(%(live)s) AND o.id <> %(o)s
   AND (o.account_id = %(a)s OR o.account_id IN (
        SELECT g.id FROM orders_account g JOIN orders_account me ON me.stp_group = g.stp_group
         WHERE me.id = %(a)s AND me.stp_group <> ''))
UNION ALL
SELECT 'N', extract(epoch FROM %(now)s - o.created_at)::text,
       (o.instrument_id = %(i)s AND o.side = %(side)s AND o.type = %(type)s
        AND o.quantity = %(q)s AND o.price IS NOT DISTINCT FROM %(p)s)::text,
       NULL, NULL, NULL, NULL, NULL, NULL
  FROM orders_order o
 WHERE o.account_id = %(a)s AND o.status <> 'DENIED' AND o.id <> %(o)s
   AND o.parent_id IS NULL
   AND o.created_at >= %(now)s - make_interval(secs => greatest(1.0, coalesce((
         SELECT max(value) FROM risk_risklimit
          WHERE kind = 'duplicate_window_s'
            AND (account_id = %(a)s OR account_id IS NULL)
            AND (instrument_id = %(i)s OR instrument_id IS NULL)), 0))::float8)
"""


def _dec_or_none(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def gather(order: Any, terms: OrderTerms) -> Snapshot:
    """Read everything the checks need for ``order`` (a row: new, or being amended) and
    sum it into a ``Snapshot``. Must run in the order's transaction: it takes the
    account's risk lock first, so what it reads includes every order of the account
    committed before (READ COMMITTED: the reads are statements after the lock)."""
    account = order.account
    instrument = order.instrument
    venue = order.venue
    account_id, instrument_id = account.pk, instrument.pk
    symbol, code = instrument.symbol, account.code
    venue_name = venue.name if venue is not None else None
    now = clock()
    buy = terms.side == "buy"

    # Market data first, before the lock: nothing waits on Redis while holding it.
    market = read_market_data(venue_name, symbol, ())
    risk_row, rows = _lock_and_gather(
        {
            "a": account_id,
            "i": instrument_id,
            "v": order.venue_id,
            "o": order.pk,
            "side": terms.side,
            "opp": "sell" if buy else "buy",
            "type": terms.type,
            "q": terms.quantity,
            "p": terms.price,
            "now": now,
            "live": LIVE_STATUSES,
        }
    )

    limit_rows: list[LimitRow] = []
    states: list[StateRow] = []
    restricted = ""
    positions: list[tuple[Any, ...]] = []
    working: list[tuple[str, str, Decimal, Decimal, Decimal, int, bool]] = []
    recent: list[tuple[float, bool]] = []
    own_best: Decimal | None = None
    own_market = False
    for kind, c1, c2, c3, c4, c5, c6, c7, _c8 in rows:
        if kind == "L":
            limit_rows.append(
                LimitRow(
                    kind=c1,
                    value=Decimal(c2),
                    account=code if c3 == "true" else None,
                    symbol=symbol if c4 == "true" else None,
                    breach_action=c5 or "",
                    limit_id=int(c6),
                )
            )
        elif kind == "S":
            states.append(_state_row(c1, c2, c3 or "", c4 == "true", code, symbol, venue_name))
        elif kind == "R":
            restricted = c1 or "restricted"
        elif kind == "P":
            # (this instrument?, symbol, quantity, average, realized, fees, last mark)
            positions.append(
                (c7 == "true", c1, Decimal(c2), _dec_or_none(c3), Decimal(c4), Decimal(c5),
                 _dec_or_none(c6))
            )  # fmt: skip
        elif kind == "W":
            working.append(
                (c1, c2, Decimal(c3), Decimal(c4 or 0), Decimal(c5 or 0), int(c6), c7 == "true")
            )
        elif kind == "X":
            own_best = _dec_or_none(c1 if buy else c2)
            own_market = c3 == "true"
        elif kind == "N":
            recent.append((float(c1), c2 == "true"))
    limits = Limits.from_resolved(checks.resolve_limits(limit_rows))
    state = checks.effective_state(states)
    symbols = {row[1] for row in positions if row[2]} | {row[0] for row in working if row[5]}
    marks = dict(market.marks)
    marks.update(read_marks(symbols - marks.keys()))  # other symbols held or working

    open_orders = 0
    working_same_side = exposure = ZERO
    for sym, side, leaves, priced, unpriced, count, this_instrument in working:
        open_orders += count
        exposure += priced + unpriced * marks.get(sym, ZERO)
        if this_instrument and side == terms.side:
            working_same_side += leaves
    position = ZERO
    for this_instrument, sym, qty, avg, _realized, _fees, mark_price in positions:
        if this_instrument:
            position = qty
        if qty:
            exposure += abs(qty) * _value_at(sym, marks, mark_price, avg)

    window = float(limits.duplicate_window_s or ZERO)
    orders_last_second = sum(1 for age, _same in recent if age <= 1.0)
    duplicates = sum(1 for age, same in recent if same and age <= window)

    pnl = pnl_of(positions, marks)
    today = now.date()
    if risk_row.pnl_day != today:
        # the first look at this account today: its day's P&L starts here
        start_day(account_id, today, pnl)
        risk_row = DayStart(pnl_day=today, day_start_pnl=pnl)

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
        limit_scope=f"{code} {symbol}",
        reference_price=market.reference_price,
        reference_age_s=market.reference_age_s,
        reference_problem=market.reference_problem,
        position=position,
        working_same_side=working_same_side,
        gross_exposure=exposure,
        open_orders=open_orders,
        orders_last_second=orders_last_second,
        duplicates_in_window=duplicates,
        own_opposite_best=own_best,
        own_opposite_market=own_market,
        stp_group=account.stp_group,
        daily_pnl=pnl - risk_row.day_start_pnl,
    )


def _state_row(
    scope: str,
    state: str,
    reason: str,
    narrowed: bool,
    account_code: str,
    symbol: str,
    venue_name: str | None,
) -> StateRow:
    if scope == "global":
        label, rank = "global", 0
    elif scope == "venue":
        label, rank = f"venue {venue_name}", 1
    elif scope == "symbol":
        label, rank = f"symbol {symbol}", 1
    elif not narrowed:
        label, rank = f"account {account_code}", 2
    else:
        label, rank = f"account {account_code} {symbol}", 3
    return StateRow(state=state, label=label, reason=reason, specificity=rank)


# --- Entry points -----------------------------------------------------------------------


def check_new_order(order: Any) -> list[dict[str, Any]]:
    """Pre-trade check of a just-inserted PENDING_NEW order (hook in
    ``orders.engine``'s submit): every failing reason, empty when it may go."""
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
    """Pre-trade check of an amend (the engine's amend): the order
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
