"""Price-time priority matching engine for the simulated exchange.

Pure module: no Django, no I/O, no asyncio. The HTTP server (``venues.sim.server``) and
the backtester drive it in-process. Semantics follow Binance spot closely enough that an
unmodified ccxt ``binance`` client sees the behaviour it expects:

* LIMIT (GTC / IOC / FOK), MARKET (``quantity`` or ``quoteOrderQty``) and LIMIT_MAKER.
* IOC remainders and unfillable FOK orders end ``EXPIRED``; a MARKET order that runs out
  of liquidity ends ``EXPIRED`` with whatever it filled.
* Balances are free/locked per asset. Placement locks what the order can spend (quote
  at the limit price for a BUY, base quantity for a SELL); fills spend from the lock and
  a cancel or expiry releases what is left.
* Fees are charged in the asset received (base for the buyer, quote for the seller), at
  the maker or taker rate, and credited to the ``FEE_ACCOUNT`` so that the total of every
  asset across all accounts is conserved exactly.
* Errors are raised as :class:`EngineError` carrying Binance's code and message.

All quantities and prices are :class:`decimal.Decimal`. Time comes from an injected
clock (a callable returning epoch milliseconds).
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

Clock = Callable[[], int]

BUY = "BUY"
SELL = "SELL"

LIMIT = "LIMIT"
MARKET = "MARKET"
LIMIT_MAKER = "LIMIT_MAKER"
ORDER_TYPES = (LIMIT, MARKET, LIMIT_MAKER)

GTC = "GTC"
IOC = "IOC"
FOK = "FOK"
TIME_IN_FORCES = (GTC, IOC, FOK)

NEW = "NEW"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELED = "CANCELED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
OPEN_STATUSES = (NEW, PARTIALLY_FILLED)

FEE_ACCOUNT = "__fees__"
COMMISSION_QUANTUM = Decimal("0.00000001")
ZERO = Decimal(0)
DAY_MS = 24 * 60 * 60 * 1000

CLIENT_ORDER_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")

MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_DUPLICATE = "Duplicate order sent."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_INVALID_SYMBOL = "Invalid symbol."
MSG_WOULD_TAKE = "Order would immediately match and take."


class EngineError(Exception):
    """A Binance-style rejection: ``code`` and ``msg`` go verbatim into the error body."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


def _mandatory(name: str) -> EngineError:
    return EngineError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _not_required(name: str) -> EngineError:
    return EngineError(-1106, f"Parameter '{name}' sent when not required.")


def _filter_failure(name: str) -> EngineError:
    return EngineError(-1013, f"Filter failure: {name}")


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    if step == 0:
        return True
    return (value % step) == 0


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``value`` (for value >= 0)."""
    if step == 0:
        return value
    return (value // step) * step


@dataclass(frozen=True)
class Instrument:
    """Static description of a spot symbol and its Binance filters."""

    symbol: str  # exchange id, e.g. "BTCUSDT"
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    max_qty: Decimal = Decimal("9000")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")
    market_max_qty: Decimal = Decimal("100")
    base_precision: int = 8
    quote_precision: int = 8
    max_num_orders: int = 200

    @property
    def unified(self) -> str:
        return f"{self.base}/{self.quote}"


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass
class Account:
    name: str
    balances: dict[str, Balance] = field(default_factory=dict)
    maker_fee: Decimal | None = None  # None -> engine default
    taker_fee: Decimal | None = None
    keep_history: bool = True  # False for the market model's house account
    check_limits: bool = True  # MAX_NUM_ORDERS etc.
    # False for liquidity replayed from a recording (venues/sim/replay.py): a recorded
    # level or trade has whatever size the real market gave it, below the minimum notional
    check_filters: bool = True

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = Balance()
            self.balances[asset] = bal
        return bal


@dataclass
class Trade:
    """One side of an execution, as returned by GET /api/v3/myTrades."""

    id: int
    symbol: str
    order_id: int
    account: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass
class PublicTrade:
    id: int
    symbol: str
    price: Decimal
    qty: Decimal
    time: int
    is_buyer_maker: bool


@dataclass(eq=False)
class Order:
    symbol: str
    order_id: int
    client_order_id: str
    account: str
    side: str
    type: str
    time_in_force: str
    price: Decimal  # 0 for market orders, as Binance reports
    orig_qty: Decimal  # 0 for a quoteOrderQty market order until it fills
    orig_quote_order_qty: Decimal
    time: int
    update_time: int
    status: str = NEW
    executed_qty: Decimal = ZERO
    cummulative_quote_qty: Decimal = ZERO
    locked_asset: str = ""
    locked_amount: Decimal = ZERO
    fills: list[Trade] = field(default_factory=list)
    self_trade_prevention_mode: str = "NONE"
    resting: bool = False  # currently on the book

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class _BookSide:
    """One side of a book: price levels, each a FIFO of resting orders."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[Decimal, deque[Order]] = {}
        self.prices: list[Decimal] = []  # ascending

    def add(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = deque()
            self.levels[order.price] = level
            bisect.insort(self.prices, order.price)
        level.append(order)

    def remove(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            return
        try:
            level.remove(order)
        except ValueError:
            return
        if not level:
            del self.levels[order.price]
            idx = bisect.bisect_left(self.prices, order.price)
            if idx < len(self.prices) and self.prices[idx] == order.price:
                self.prices.pop(idx)

    def best(self) -> Decimal | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def iter_prices(self) -> Iterator[Decimal]:
        """Best to worst."""
        if self.is_bid:
            return reversed(list(self.prices))
        return iter(list(self.prices))

    def aggregated(self, limit: int) -> list[tuple[Decimal, Decimal]]:
        out: list[tuple[Decimal, Decimal]] = []
        for price in self.iter_prices():
            qty = sum((o.remaining for o in self.levels[price]), ZERO)
            out.append((price, qty))
            if len(out) >= limit:
                break
        return out

    def orders(self) -> Iterator[Order]:
        for price in self.iter_prices():
            yield from self.levels[price]


@dataclass
class Book:
    instrument: Instrument
    bids: _BookSide = field(default_factory=lambda: _BookSide(True))
    asks: _BookSide = field(default_factory=lambda: _BookSide(False))
    update_id: int = 1

    def side(self, side: str) -> _BookSide:
        return self.bids if side == BUY else self.asks

    def opposite(self, side: str) -> _BookSide:
        return self.asks if side == BUY else self.bids


@dataclass
class Ticker24h:
    symbol: str
    open_price: Decimal
    high_price: Decimal
    low_price: Decimal
    last_price: Decimal
    last_qty: Decimal
    volume: Decimal
    quote_volume: Decimal
    first_id: int
    last_id: int
    count: int
    open_time: int
    close_time: int
    prev_close_price: Decimal


_Fill = tuple[Order, Decimal, Decimal]  # maker order, qty, price


class MatchingEngine:
    """Books for several symbols plus the accounts that trade on them."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        clock: Clock,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        first_id: int = 1,
    ) -> None:
        self.clock = clock
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in instruments}
        self.books: dict[str, Book] = {s: Book(i) for s, i in self.instruments.items()}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, Order] = {}
        # (account, symbol, clientOrderId) -> latest orderId with that id
        self._by_client_id: dict[tuple[str, str, str], int] = {}
        # (account, clientOrderId) -> open orderId (uniqueness among open orders)
        self._open_client_ids: dict[tuple[str, str], int] = {}
        self._open_count: dict[tuple[str, str], int] = {}
        self._open_by_account: dict[str, dict[int, Order]] = {}
        self.account_trades: dict[tuple[str, str], list[Trade]] = {}
        self.account_orders: dict[tuple[str, str], list[Order]] = {}
        self.tape: dict[str, deque[PublicTrade]] = {s: deque() for s in self.instruments}
        self._next_order_id = first_id
        self._next_trade_id = first_id
        self.add_account(FEE_ACCOUNT, {})

    # ------------------------------------------------------------------ accounts

    def add_account(
        self,
        name: str,
        balances: dict[str, Decimal],
        *,
        maker_fee: Decimal | None = None,
        taker_fee: Decimal | None = None,
        keep_history: bool = True,
        check_limits: bool = True,
        check_filters: bool = True,
    ) -> Account:
        if name in self.accounts:
            raise ValueError(f"account {name!r} exists")
        acct = Account(
            name=name,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
            keep_history=keep_history,
            check_limits=check_limits,
            check_filters=check_filters,
        )
        for asset, amount in balances.items():
            acct.balance(asset).free = Decimal(amount)
        self.accounts[name] = acct
        return acct

    def account(self, name: str) -> Account:
        acct = self.accounts.get(name)
        if acct is None:
            raise KeyError(name)
        return acct

    def set_free_balance(self, account: str, asset: str, free: Decimal) -> None:
        self.account(account).balance(asset).free = Decimal(free)

    def total_assets(self) -> dict[str, Decimal]:
        """Sum of free+locked of every asset over every account (fee account included)."""
        totals: dict[str, Decimal] = {}
        for acct in self.accounts.values():
            for asset, bal in acct.balances.items():
                totals[asset] = totals.get(asset, ZERO) + bal.total
        return totals

    # ------------------------------------------------------------------ lookups

    def instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise EngineError(-1121, MSG_INVALID_SYMBOL)
        return inst

    def best_bid(self, symbol: str) -> Decimal | None:
        return self.books[symbol].bids.best()

    def best_ask(self, symbol: str) -> Decimal | None:
        return self.books[symbol].asks.best()

    def depth(
        self, symbol: str, limit: int = 100
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        self.instrument(symbol)
        book = self.books[symbol]
        return book.bids.aggregated(limit), book.asks.aggregated(limit)

    def get_order(
        self,
        account: str,
        symbol: str,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        *,
        missing_code: int = -2013,
        missing_msg: str = MSG_NO_SUCH_ORDER,
    ) -> Order:
        self.instrument(symbol)
        if order_id is None and orig_client_order_id is None:
            raise EngineError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order: Order | None = None
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is not None and (
                orig_client_order_id is not None and order.client_order_id != orig_client_order_id
            ):
                order = None
        else:
            assert orig_client_order_id is not None
            oid = self._by_client_id.get((account, symbol, orig_client_order_id))
            order = self.orders.get(oid) if oid is not None else None
        if order is None or order.account != account or order.symbol != symbol:
            raise EngineError(missing_code, missing_msg)
        return order

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            self.instrument(symbol)
        opened = self._open_by_account.get(account, {})
        out = [o for o in opened.values() if symbol is None or o.symbol == symbol]
        out.sort(key=lambda o: o.order_id)
        return out

    def all_orders(
        self,
        account: str,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[Order]:
        self.instrument(symbol)
        orders = self.account_orders.get((account, symbol), [])
        sel = [
            o
            for o in orders
            if (order_id is None or o.order_id >= order_id)
            and (start_time is None or o.time >= start_time)
            and (end_time is None or o.time <= end_time)
        ]
        if order_id is None and start_time is None:
            return sel[-limit:]
        return sel[:limit]

    def my_trades(
        self,
        account: str,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[Trade]:
        self.instrument(symbol)
        trades = self.account_trades.get((account, symbol), [])
        sel = [
            t
            for t in trades
            if (order_id is None or t.order_id == order_id)
            and (from_id is None or t.id >= from_id)
            and (start_time is None or t.time >= start_time)
            and (end_time is None or t.time <= end_time)
        ]
        if from_id is None and start_time is None:
            return sel[-limit:]
        return sel[:limit]

    def recent_trades(self, symbol: str, limit: int = 500) -> list[PublicTrade]:
        self.instrument(symbol)
        tape = self.tape[symbol]
        return list(tape)[-limit:] if limit > 0 else []

    def ticker_24h(self, symbol: str) -> Ticker24h:
        self.instrument(symbol)
        now = self.clock()
        tape = self.tape[symbol]
        self._trim_tape(symbol, now)
        bid = self.best_bid(symbol)
        ask = self.best_ask(symbol)
        if tape:
            first, last = tape[0], tape[-1]
            prices = [t.price for t in tape]
            return Ticker24h(
                symbol=symbol,
                open_price=first.price,
                high_price=max(prices),
                low_price=min(prices),
                last_price=last.price,
                last_qty=last.qty,
                volume=sum((t.qty for t in tape), ZERO),
                quote_volume=sum((t.qty * t.price for t in tape), ZERO),
                first_id=first.id,
                last_id=last.id,
                count=len(tape),
                open_time=now - DAY_MS,
                close_time=now,
                prev_close_price=first.price,
            )
        ref = ZERO
        if bid is not None and ask is not None:
            ref = (bid + ask) / 2
        elif bid is not None:
            ref = bid
        elif ask is not None:
            ref = ask
        ref = floor_to_step(ref, self.instruments[symbol].tick_size)
        return Ticker24h(
            symbol=symbol,
            open_price=ref,
            high_price=ref,
            low_price=ref,
            last_price=ref,
            last_qty=ZERO,
            volume=ZERO,
            quote_volume=ZERO,
            first_id=-1,
            last_id=-1,
            count=0,
            open_time=now - DAY_MS,
            close_time=now,
            prev_close_price=ref,
        )

    # ------------------------------------------------------------------ placing

    def place_order(
        self,
        account: str,
        symbol: str,
        side: str,
        type: str,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        quote_order_qty: Decimal | None = None,
    ) -> Order:
        """Validate, lock funds, match and (for GTC/LIMIT_MAKER remainders) rest an order.

        Returns the order; the trades it produced as taker are in ``order.fills``.
        Raises :class:`EngineError` for anything Binance would reject outright.
        """
        inst = self.instrument(symbol)
        acct = self.accounts.get(account)
        if acct is None:
            raise EngineError(-2015, "Invalid API-key, IP, or permissions for action.")
        if side not in (BUY, SELL):
            raise EngineError(-1100, "Illegal characters found in parameter 'side'.")
        if type not in ORDER_TYPES:
            raise EngineError(-1116, "Invalid orderType.")
        if client_order_id is not None and not CLIENT_ORDER_ID_RE.match(client_order_id):
            raise EngineError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; "
                "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        book = self.books[symbol]

        # ---- parameter combinations, as Binance checks them
        if type == LIMIT:
            if time_in_force is None:
                raise _mandatory("timeInForce")
            if time_in_force not in TIME_IN_FORCES:
                raise EngineError(-1115, "Invalid timeInForce.")
            if price is None:
                raise _mandatory("price")
            if quantity is None:
                raise _mandatory("quantity")
            if quote_order_qty is not None:
                raise _not_required("quoteOrderQty")
        elif type == LIMIT_MAKER:
            if time_in_force is not None:
                raise _not_required("timeInForce")
            if price is None:
                raise _mandatory("price")
            if quantity is None:
                raise _mandatory("quantity")
            if quote_order_qty is not None:
                raise _not_required("quoteOrderQty")
            time_in_force = GTC
        else:  # MARKET
            if time_in_force is not None:
                raise _not_required("timeInForce")
            if price is not None:
                raise _not_required("price")
            if quantity is None and quote_order_qty is None:
                raise EngineError(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            if quantity is not None and quote_order_qty is not None:
                raise EngineError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            time_in_force = GTC

        # ---- filters (not for liquidity replayed from a recording)
        if acct.check_filters:
            if price is not None:
                if price <= 0 or price < inst.min_price or price > inst.max_price:
                    raise _filter_failure("PRICE_FILTER")
                if not _is_multiple(price, inst.tick_size):
                    raise _filter_failure("PRICE_FILTER")
            if quantity is not None:
                max_qty = inst.market_max_qty if type == MARKET else inst.max_qty
                lot_filter = "MARKET_LOT_SIZE" if type == MARKET else "LOT_SIZE"
                if quantity <= 0 or quantity < inst.min_qty:
                    raise _filter_failure("LOT_SIZE")
                if quantity > max_qty:
                    raise _filter_failure(lot_filter)
                if not _is_multiple(quantity, inst.lot_size):
                    raise _filter_failure("LOT_SIZE")
            if quote_order_qty is not None and quote_order_qty <= 0:
                raise EngineError(-1013, "Invalid quoteOrderQty.")
            if price is not None and quantity is not None:
                notional = price * quantity
                if notional < inst.min_notional or notional > inst.max_notional:
                    raise _filter_failure("NOTIONAL")
            elif type == MARKET:
                ref = book.opposite(side).best()
                if quote_order_qty is not None:
                    notional = quote_order_qty
                elif ref is not None and quantity is not None:
                    notional = ref * quantity
                else:
                    notional = inst.min_notional
                if notional < inst.min_notional:
                    raise _filter_failure("NOTIONAL")
        if acct.check_limits and self._open_count.get((account, symbol), 0) >= inst.max_num_orders:
            raise EngineError(-2010, "Filter failure: MAX_NUM_ORDERS")

        # ---- duplicate client order id among open orders
        if client_order_id is not None and (account, client_order_id) in self._open_client_ids:
            raise EngineError(-2010, MSG_DUPLICATE)

        # ---- plan the match (read-only) to know what can fill
        opp = book.opposite(side)
        if type == LIMIT_MAKER:
            best = opp.best()
            assert price is not None
            if best is not None and (
                (side == BUY and best <= price) or (side == SELL and best >= price)
            ):
                raise EngineError(-2010, MSG_WOULD_TAKE)
            plan: list[_Fill] = []
        else:
            plan = self._plan(inst, opp, side, price, quantity, quote_order_qty)
        planned_qty = sum((q for _, q, _ in plan), ZERO)
        planned_cost = sum((q * p for _, q, p in plan), ZERO)

        # ---- funds to lock
        if side == BUY:
            lock_asset = inst.quote
            if type == MARKET:
                lock = quote_order_qty if quote_order_qty is not None else planned_cost
            else:
                assert price is not None and quantity is not None
                lock = price * quantity
        else:
            lock_asset = inst.base
            if quantity is not None:
                lock = quantity
            else:
                lock = planned_qty
        bal = acct.balance(lock_asset)
        if lock > bal.free:
            raise EngineError(-2010, MSG_INSUFFICIENT)

        # ---- accepted: create the order
        now = self.clock()
        oid = self._next_order_id
        self._next_order_id += 1
        if client_order_id is None:
            client_order_id = f"sim-{oid}"
        order = Order(
            symbol=symbol,
            order_id=oid,
            client_order_id=client_order_id,
            account=account,
            side=side,
            type=type,
            time_in_force=time_in_force,
            price=price if price is not None else ZERO,
            orig_qty=quantity if quantity is not None else ZERO,
            orig_quote_order_qty=quote_order_qty if quote_order_qty is not None else ZERO,
            time=now,
            update_time=now,
            locked_asset=lock_asset,
            locked_amount=lock,
        )
        bal.free -= lock
        bal.locked += lock
        self.orders[oid] = order
        if acct.keep_history:
            self.account_orders.setdefault((account, symbol), []).append(order)
            self._by_client_id[(account, symbol, client_order_id)] = oid

        # ---- FOK: all or nothing
        if time_in_force == FOK and planned_qty < (quantity or ZERO):
            self._finish(order, EXPIRED)
            return order

        # ---- execute
        for maker, qty, fill_price in plan:
            self._execute(book, order, maker, qty, fill_price, now)
        if type == MARKET and quote_order_qty is not None:
            order.orig_qty = order.executed_qty

        # ---- what happens to the remainder
        if order.executed_qty > 0:
            order.status = PARTIALLY_FILLED
        if type == MARKET:
            if quote_order_qty is not None:
                self._finish(order, FILLED if order.executed_qty > 0 else EXPIRED)
            else:
                self._finish(order, FILLED if order.remaining == 0 else EXPIRED)
        elif order.remaining == 0:
            self._finish(order, FILLED)
        elif time_in_force in (IOC, FOK):
            self._finish(order, EXPIRED)
        else:
            # rests on the book; keep only what the remainder needs locked
            if side == BUY:
                need = order.remaining * order.price
                self._release(order, order.locked_amount - need)
            book.side(side).add(order)
            book.update_id += 1
            order.resting = True
            self._open_client_ids[(account, client_order_id)] = oid
            self._open_count[(account, symbol)] = self._open_count.get((account, symbol), 0) + 1
            self._open_by_account.setdefault(account, {})[oid] = order
        return order

    def _plan(
        self,
        inst: Instrument,
        opp: _BookSide,
        side: str,
        limit_price: Decimal | None,
        quantity: Decimal | None,
        quote_qty: Decimal | None,
    ) -> list[_Fill]:
        plan: list[_Fill] = []
        remaining = quantity
        remaining_quote = quote_qty
        for level_price in opp.iter_prices():
            if limit_price is not None and (
                (side == BUY and level_price > limit_price)
                or (side == SELL and level_price < limit_price)
            ):
                break
            for maker in opp.levels[level_price]:
                avail = maker.remaining
                if remaining is not None:
                    q = min(avail, remaining)
                else:
                    assert remaining_quote is not None
                    q = min(avail, floor_to_step(remaining_quote / level_price, inst.lot_size))
                if q <= 0:
                    return plan
                plan.append((maker, q, level_price))
                if remaining is not None:
                    remaining -= q
                    if remaining <= 0:
                        return plan
                else:
                    assert remaining_quote is not None
                    remaining_quote -= q * level_price
        return plan

    def _fee_rate(self, acct: Account, maker: bool) -> Decimal:
        if maker:
            return acct.maker_fee if acct.maker_fee is not None else self.maker_fee
        return acct.taker_fee if acct.taker_fee is not None else self.taker_fee

    def _execute(
        self, book: Book, taker: Order, maker: Order, qty: Decimal, price: Decimal, now: int
    ) -> None:
        inst = book.instrument
        quote_amt = qty * price
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        for order, is_maker in ((maker, True), (taker, False)):
            acct = self.accounts[order.account]
            is_buyer = order.side == BUY
            # pay from the order's lock
            spent = quote_amt if is_buyer else qty
            paid_bal = acct.balance(order.locked_asset)
            paid_bal.locked -= spent
            order.locked_amount -= spent
            # receive, minus commission in the received asset
            recv_asset = inst.base if is_buyer else inst.quote
            gross = qty if is_buyer else quote_amt
            rate = self._fee_rate(acct, is_maker)
            commission = (gross * rate).quantize(COMMISSION_QUANTUM, rounding=ROUND_HALF_UP)
            if commission > gross:
                commission = gross
            acct.balance(recv_asset).free += gross - commission
            if commission:
                self.accounts[FEE_ACCOUNT].balance(recv_asset).free += commission
            order.executed_qty += qty
            order.cummulative_quote_qty += quote_amt
            order.update_time = now
            trade = Trade(
                id=trade_id,
                symbol=order.symbol,
                order_id=order.order_id,
                account=order.account,
                price=price,
                qty=qty,
                quote_qty=quote_amt,
                commission=commission,
                commission_asset=recv_asset,
                time=now,
                is_buyer=is_buyer,
                is_maker=is_maker,
            )
            if not is_maker:
                order.fills.append(trade)
            if acct.keep_history:
                self.account_trades.setdefault((order.account, order.symbol), []).append(trade)
        self.tape[inst.symbol].append(
            PublicTrade(
                id=trade_id,
                symbol=inst.symbol,
                price=price,
                qty=qty,
                time=now,
                is_buyer_maker=maker.side == BUY,
            )
        )
        self._trim_tape(inst.symbol, now)
        # maker bookkeeping
        book.update_id += 1
        if maker.remaining == 0:
            book.side(maker.side).remove(maker)
            self._finish(maker, FILLED)
        else:
            maker.status = PARTIALLY_FILLED

    def _trim_tape(self, symbol: str, now: int) -> None:
        tape = self.tape[symbol]
        cutoff = now - DAY_MS
        while tape and (tape[0].time < cutoff or len(tape) > 200_000):
            tape.popleft()

    def _release(self, order: Order, amount: Decimal) -> None:
        if amount <= 0:
            return
        bal = self.accounts[order.account].balance(order.locked_asset)
        bal.locked -= amount
        bal.free += amount
        order.locked_amount -= amount

    def _finish(self, order: Order, status: str) -> None:
        """Move an order to a terminal status and release whatever it still has locked."""
        order.status = status
        order.update_time = self.clock()
        self._release(order, order.locked_amount)
        if order.resting:
            order.resting = False
            self._open_client_ids.pop((order.account, order.client_order_id), None)
            key = (order.account, order.symbol)
            self._open_count[key] = self._open_count.get(key, 1) - 1
            self._open_by_account.get(order.account, {}).pop(order.order_id, None)
        if not self.accounts[order.account].keep_history:
            self.orders.pop(order.order_id, None)

    # ------------------------------------------------------------------ cancelling

    def cancel_order(
        self,
        account: str,
        symbol: str,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
    ) -> Order:
        order = self.get_order(
            account,
            symbol,
            order_id,
            orig_client_order_id,
            missing_code=-2011,
            missing_msg=MSG_UNKNOWN_ORDER,
        )
        if not order.is_open:
            raise EngineError(-2011, MSG_UNKNOWN_ORDER)
        self._cancel(order)
        return order

    def _cancel(self, order: Order) -> None:
        book = self.books[order.symbol]
        book.side(order.side).remove(order)
        book.update_id += 1
        self._finish(order, CANCELED)

    def reduce_resting(self, order: Order, by: Decimal) -> None:
        """Take ``by`` off a resting order's quantity, keeping its place in the queue (as
        Binance's keep-priority amend does); reducing it to nothing cancels it."""
        if not order.resting:
            raise EngineError(-2011, MSG_UNKNOWN_ORDER)
        if by >= order.remaining:
            self._cancel(order)
            return
        order.orig_qty -= by
        self._release(order, by * order.price if order.side == BUY else by)
        order.update_time = self.clock()
        self.books[order.symbol].update_id += 1

    def cancel_all(self, account: str, symbol: str) -> list[Order]:
        """DELETE /api/v3/openOrders. Binance answers -2011 when nothing is open."""
        orders = self.open_orders(account, symbol)
        if not orders:
            raise EngineError(-2011, MSG_UNKNOWN_ORDER)
        for order in orders:
            self._cancel(order)
        return orders

    def cancel_account_orders(self, account: str, symbol: str) -> int:
        """Cancel every open order of ``account`` on ``symbol`` (no error when none)."""
        victims = self.open_orders(account, symbol)
        for order in victims:
            self._cancel(order)
        return len(victims)

    # ------------------------------------------------------------------ checks

    def is_crossed(self, symbol: str) -> bool:
        bid = self.best_bid(symbol)
        ask = self.best_ask(symbol)
        return bid is not None and ask is not None and bid >= ask


def format_decimal(value: Decimal, places: int = 8) -> str:
    """Binance-style fixed-point string, e.g. ``Decimal('0.1')`` -> ``'0.10000000'``."""
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN))
