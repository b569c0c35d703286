"""A simulated venue over a recorded book: the matching of the strategy's orders (pure).

The recorded market is the venue's liquidity. Per recording source and symbol a
:class:`SourceBook` holds the book rebuilt by ``marketdata.book.L2Book`` from the
snapshot and diffs, with the newest ``bookTicker`` laid over its top while it is newer
than the depth (Binance's ticker is real time, its diffs come every 100 ms; the ticker
is not written into the L2 book, where an older diff arriving after it could cross it).

A :class:`SimVenue` stands for one venue on one source, through a transform: prices x
``1 + price_offset_bp / 10,000`` (rounded away from the touch to the venue's tick),
quantities x ``depth_scale``, its own fees. So one recording can be several venues.

Matching:

* market orders and marketable limits walk the book from the touch (slippage), taking
  each level's quantity at the level's price, up to the limit; what they take is gone
  from that level until the venue's next depth update (the recording does not know
  about us). IOC remainders expire, FOK orders fill entirely or expire untouched, a
  market order that runs out of book expires with what it got (Binance).
* a resting limit keeps a **queue position**: the quantity ahead of it at its price
  when it arrived. Recorded trades at its price reduce it; what trades beyond it fills
  the order; a trade through its price, or the other side's touch moving through it,
  fills it entirely. Cancels at the level (the level shrinking by more than the trades
  there explain) move it forward according to the queue model:

  - ``conservative`` (hftbacktest's RiskAverseQueueModel): only trades move it; a
    shrinking level can only cap it at the level's new size;
  - ``probabilistic`` (hftbacktest's ProbQueueModel with f(x) = x^2): a share
    f(front) / (f(front) + f(back)) of each cancel is taken from the quantity ahead.

* fees: maker or taker rate of the venue x notional, in the quote currency.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from backtest.config import VenueConfig
from backtest.data import Depth, Snapshot, Ticker
from marketdata.book import Diff, L2Book, MdState
from venues.base import VenueOrder, VenueOrderStatus, VenueTrade

ZERO = Decimal(0)
ONE = Decimal(1)
EIGHT_PLACES = Decimal("0.00000001")
Level = tuple[Decimal, Decimal]


class SourceBook:
    """One recorded venue and symbol: the L2 book plus the newest ticker over its top."""

    __slots__ = ("book", "has_book", "symbol", "top", "top_id", "ts_ns", "version")

    def __init__(self, symbol: str) -> None:
        self.book = L2Book(symbol)
        self.symbol = symbol
        self.top: tuple[Decimal, Decimal, Decimal, Decimal] | None = (
            None  # bid, bid qty, ask, ask qty
        )
        self.top_id = -1
        self.ts_ns = 0
        self.version = 0  # bumped on every change (views compare it)
        self.has_book = False  # a snapshot, diff or ticker was seen

    # -------------------------------------------------------------- updating

    def on_snapshot(self, ev: Snapshot) -> None:
        self.has_book = True
        self.book.apply_snapshot(ev.bids, ev.asks, ev.last_update_id)
        if self.top is not None and (ev.last_update_id or 0) >= self.top_id:
            self.top = None
        self.ts_ns = ev.ts_ns
        self.version += 1

    def on_depth(self, ev: Depth) -> None:
        self.has_book = True
        self.book.apply_diff(Diff(ev.first_id, ev.last_id, ev.bids, ev.asks))
        if self.top is not None and ev.last_id >= self.top_id:
            self.top = None  # the depth has caught up with the ticker
        self.ts_ns = ev.ts_ns
        self.version += 1

    def on_ticker(self, ev: Ticker) -> None:
        self.has_book = True
        uid = ev.update_id if ev.update_id is not None else self.top_id + 1
        last = self.book.last_update_id
        if last is not None and uid <= last:
            return  # older than the depth we hold
        if uid < self.top_id:
            return
        self.top = (ev.bid_price, ev.bid_qty, ev.ask_price, ev.ask_qty)
        self.top_id = uid
        self.ts_ns = ev.ts_ns
        self.version += 1

    def on_trade_only(self, price: Decimal, qty: Decimal) -> None:
        """A recording of trades alone (a trade CSV): the book is one level a tick (the
        price's last digit) either side of the last trade, as deep as the trade."""
        step = Decimal(1).scaleb(price.as_tuple().exponent)  # type: ignore[arg-type]
        self.top = (price - step, qty, price + step, qty)
        self.top_id += 1
        self.version += 1

    # -------------------------------------------------------------- reading

    @property
    def state(self) -> MdState:
        if self.book.in_sync:
            return MdState.LIVE
        if self.top is not None and not self.book._sequenced:
            return MdState.LIVE  # a ticker-only recording
        return self.book.state

    def best_bid(self) -> Level | None:
        if self.top is not None:
            return self.top[0], self.top[1]
        return self.book.bids.best()

    def best_ask(self) -> Level | None:
        if self.top is not None:
            return self.top[2], self.top[3]
        return self.book.asks.best()

    def level_qty(self, is_bid: bool, price: Decimal) -> Decimal:
        top = self.top
        if top is not None:
            if is_bid:
                if price > top[0]:
                    return ZERO
                if price == top[0]:
                    return top[1]
            else:
                if price < top[2]:
                    return ZERO
                if price == top[2]:
                    return top[3]
        side = self.book.bids if is_bid else self.book.asks
        return side.levels.get(price, ZERO)

    def levels(self, is_bid: bool) -> Iterator[Level]:
        """The side's levels, best first, with the ticker's top in place of the book's."""
        top = self.top
        side = self.book.bids if is_bid else self.book.asks
        prices, qty = side.prices, side.levels
        if is_bid:
            if top is not None:
                yield top[0], top[1]
                i = bisect_left(prices, top[0]) - 1
            else:
                i = len(prices) - 1
            while i >= 0:
                p = prices[i]
                yield p, qty[p]
                i -= 1
        else:
            if top is not None:
                yield top[2], top[3]
                i = bisect_right(prices, top[2])
            else:
                i = 0
            n = len(prices)
            while i < n:
                p = prices[i]
                yield p, qty[p]
                i += 1


@dataclass(slots=True)
class SimOrder:
    """An order as the simulated venue holds it."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit
    time_in_force: str
    quantity: Decimal
    price: Decimal | None  # the venue's price
    src_price: Decimal | None  # the same price on the recording's scale
    status: VenueOrderStatus = VenueOrderStatus.NEW
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    trades: list[VenueTrade] = field(default_factory=list)
    ahead: Decimal = ZERO  # queue ahead of it at its price
    level: Decimal = ZERO  # the level's size when last looked at
    traded_at_level: Decimal = ZERO  # recorded trades at its price since then

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in (VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED)

    def answer(self) -> VenueOrder:
        """What the venue says of it (``GET /api/v3/order`` with its trades)."""
        return VenueOrder(
            venue_order_id=self.venue_order_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            type=self.type,
            status=self.status,
            quantity=self.quantity,
            price=self.price,
            filled_quantity=self.filled,
            average_price=(self.notional / self.filled) if self.filled else None,
            trades=tuple(self.trades),
        )


@dataclass(frozen=True, slots=True)
class Execution:
    """One of our trades at a venue, as the venue executed it."""

    order: SimOrder
    trade: VenueTrade
    ts_ns: int


class SimVenue:
    """One simulated venue: transformed views of the source books, the strategy's orders
    at the venue, and their matching."""

    def __init__(
        self, config: VenueConfig, sources: dict[str, SourceBook], *, queue_model: str
    ) -> None:
        self.config = config
        self.name = config.name
        self.sources = sources  # symbol -> source book
        self.factor = ONE + Decimal(str(config.price_offset_bp)) / Decimal(10_000)
        self.identity_price = self.factor == ONE
        self.scale = Decimal(str(config.depth_scale))
        self.identity_qty = self.scale == ONE
        self.tick = config.tick_size
        self.maker_fee, self.taker_fee = config.maker_fee, config.taker_fee
        self.probabilistic = queue_model == "probabilistic"
        self.orders: dict[str, SimOrder] = {}
        self.resting: dict[str, list[SimOrder]] = {}  # symbol -> open orders resting
        self.consumed: dict[
            str, dict[Decimal, Decimal]
        ] = {}  # symbol -> source price -> qty we took
        self.seq = 0
        self.trade_seq = 0
        self.down = False  # in an outage window

    # ------------------------------------------------------------ the transform

    def to_venue(self, price: Decimal, is_bid: bool) -> Decimal:
        if self.identity_price:
            return price
        out = price * self.factor
        step = self.tick or EIGHT_PLACES
        return (out / step).to_integral_value(ROUND_FLOOR if is_bid else ROUND_CEILING) * step

    def to_source(self, price: Decimal) -> Decimal:
        return price if self.identity_price else price / self.factor

    def qty(self, src_qty: Decimal) -> Decimal:
        return src_qty if self.identity_qty else src_qty * self.scale

    def state(self, symbol: str) -> MdState:
        if self.down:
            return MdState.DOWN
        src = self.sources.get(symbol)
        return MdState.RESYNCING if src is None else src.state

    def best_bid(self, symbol: str) -> Level | None:
        src = self.sources.get(symbol)
        top = None if src is None else src.best_bid()
        return None if top is None else (self.to_venue(top[0], True), self.qty(top[1]))

    def best_ask(self, symbol: str) -> Level | None:
        src = self.sources.get(symbol)
        top = None if src is None else src.best_ask()
        return None if top is None else (self.to_venue(top[0], False), self.qty(top[1]))

    def mid(self, symbol: str) -> Decimal | None:
        bid, ask = self.best_bid(symbol), self.best_ask(symbol)
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2

    def depth(self, symbol: str, is_bid: bool, n: int) -> list[Level]:
        """The best ``n`` levels of a side, on the venue's scale, net of what we took."""
        src = self.sources.get(symbol)
        if src is None:
            return []
        consumed = self.consumed.get(symbol)
        out: list[Level] = []
        for p, q in src.levels(is_bid):
            if consumed:
                q = q - consumed.get(p, ZERO)
                if q <= 0:
                    continue
            out.append((self.to_venue(p, is_bid), self.qty(q)))
            if len(out) >= n:
                break
        return out

    # ------------------------------------------------------------ orders

    def fetch(self, client_order_id: str) -> SimOrder | None:
        return self.orders.get(client_order_id)

    def place(
        self,
        *,
        client_order_id: str,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal,
        price: Decimal | None,
        time_in_force: str,
        now_ns: int,
    ) -> tuple[SimOrder, list[Execution]]:
        """A new order arrives: it takes what it can, then rests, expires or is done.
        A second order with the same client id is refused (Binance: duplicate order)."""
        if client_order_id in self.orders:
            raise DuplicateOrder(client_order_id)
        self.seq += 1
        order = SimOrder(
            client_order_id=client_order_id,
            venue_order_id=f"{self.name}-{self.seq}",
            symbol=symbol,
            side=side,
            type=type,
            time_in_force=time_in_force if type == "limit" else "IOC",
            quantity=quantity,
            price=price,
            src_price=None if price is None else self.to_source(price),
        )
        self.orders[client_order_id] = order
        if symbol not in self.sources:
            order.status = VenueOrderStatus.REJECTED
            return order, []
        execs = self._take(order, now_ns)
        self._after_take(order, now_ns)
        return order, execs

    def cancel(self, client_order_id: str) -> SimOrder | None:
        """Cancel an open order; None when the venue does not have it open (Binance
        ``-2011 Unknown order``: filled, canceled already, or never received)."""
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open:
            return None
        order.status = VenueOrderStatus.CANCELED
        self._unrest(order)
        return order

    def amend(
        self, client_order_id: str, *, quantity: Decimal | None, price: Decimal | None, now_ns: int
    ) -> tuple[SimOrder | None, list[Execution]]:
        """Binance-style cancel-replace in place: the order keeps its ids, loses its queue
        position (it is a new order at the venue), takes liquidity if it now crosses.
        None when the order is not open (too late)."""
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open:
            return None, []
        new_qty = quantity if quantity is not None else order.quantity
        if new_qty <= order.filled:
            order.quantity = order.filled
            order.status = VenueOrderStatus.FILLED
            self._unrest(order)
            return order, []
        self._unrest(order)
        order.quantity = new_qty
        if price is not None:
            order.price, order.src_price = price, self.to_source(price)
        execs = self._take(order, now_ns)
        self._after_take(order, now_ns)
        return order, execs

    def _after_take(self, order: SimOrder, now_ns: int) -> None:
        if order.leaves == 0:
            order.status = VenueOrderStatus.FILLED
        elif order.type == "market" or order.time_in_force in ("IOC", "FOK"):
            order.status = VenueOrderStatus.EXPIRED
        else:
            self._rest(order)

    def _rest(self, order: SimOrder) -> None:
        src = self.sources[order.symbol]
        assert order.src_price is not None
        level = self.qty(src.level_qty(order.side == "buy", order.src_price))
        order.ahead = order.level = level
        order.traded_at_level = ZERO
        self.resting.setdefault(order.symbol, []).append(order)

    def _unrest(self, order: SimOrder) -> None:
        resting = self.resting.get(order.symbol)
        if resting and order in resting:
            resting.remove(order)

    def _take(self, order: SimOrder, now_ns: int) -> list[Execution]:
        """Walk the other side up to the limit (all or nothing for FOK)."""
        src = self.sources[order.symbol]
        is_buy = order.side == "buy"
        limit = order.price
        consumed = self.consumed.setdefault(order.symbol, {})
        plan: list[tuple[Decimal, Decimal, Decimal]] = []  # source price, venue price, qty
        need = order.leaves
        for p_src, q_src in src.levels(not is_buy):
            price = self.to_venue(p_src, not is_buy)
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            avail = self.qty(q_src) - consumed.get(p_src, ZERO)
            if avail <= 0:
                continue
            take = avail if avail < need else need
            plan.append((p_src, price, take))
            need -= take
            if need == 0:
                break
        if order.time_in_force == "FOK" and need > 0:
            return []
        execs = []
        for p_src, price, take in plan:
            consumed[p_src] = consumed.get(p_src, ZERO) + take
            execs.append(self._fill(order, take, price, maker=False, now_ns=now_ns))
        return execs

    def _fill(
        self, order: SimOrder, qty: Decimal, price: Decimal, *, maker: bool, now_ns: int
    ) -> Execution:
        self.trade_seq += 1
        fee = (qty * price * (self.maker_fee if maker else self.taker_fee)).quantize(EIGHT_PLACES)
        trade = VenueTrade(
            trade_id=f"{self.name}-t{self.trade_seq}",
            venue_order_id=order.venue_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=qty,
            price=price,
            fee=fee,
            fee_currency="quote",
            is_maker=maker,
            client_order_id=order.client_order_id,
        )
        order.filled += qty
        order.notional += qty * price
        order.trades.append(trade)
        order.status = (
            VenueOrderStatus.FILLED
            if order.filled == order.quantity
            else VenueOrderStatus.PARTIALLY_FILLED
        )
        return Execution(order, trade, now_ns)

    # ------------------------------------------------------------ the market moves

    def on_book(self, symbol: str, now_ns: int) -> list[Execution]:
        """After the source book changed: what we took is back, queues move, resting
        orders the other side's touch went through are filled."""
        consumed = self.consumed.get(symbol)
        if consumed:
            consumed.clear()
        resting = self.resting.get(symbol)
        if not resting:
            return []
        src = self.sources[symbol]
        execs: list[Execution] = []
        bid, ask = src.best_bid(), src.best_ask()
        for order in list(resting):
            p = order.src_price
            assert p is not None
            is_buy = order.side == "buy"
            touch = ask if is_buy else bid
            if touch is not None and (touch[0] < p if is_buy else touch[0] > p):
                execs.append(
                    self._fill(order, order.leaves, order.price or p, maker=True, now_ns=now_ns)
                )
                resting.remove(order)
                continue
            new = self.qty(src.level_qty(is_buy, p))
            prev = order.level
            if new < prev:
                if self.probabilistic:
                    cancels = prev - new - order.traded_at_level
                    if cancels > 0:
                        front = order.ahead
                        back = prev - front  # the recorded level holds the others, not us
                        if back < 0:
                            back = ZERO
                        f_front, f_back = float(front) ** 2, float(back) ** 2
                        share = f_front / (f_front + f_back) if f_front + f_back > 0 else 1.0
                        taken = Decimal(str(round(share, 12))) * cancels
                        if taken > front:
                            taken = front
                        order.ahead = front - taken
                if order.ahead > new:
                    order.ahead = new
            order.level = new
            order.traded_at_level = ZERO
        return execs

    def on_trade(
        self, symbol: str, price: Decimal, qty: Decimal, aggressor: str | None, now_ns: int
    ) -> list[Execution]:
        """A recorded trade: resting orders on the side it hit move up or fill."""
        resting = self.resting.get(symbol)
        if not resting:
            return []
        q = self.qty(qty)
        execs: list[Execution] = []
        for order in list(resting):
            p = order.src_price
            assert p is not None
            is_buy = order.side == "buy"
            if aggressor is not None and (aggressor == "buy") == is_buy:
                continue  # a trade that hit the other side
            if is_buy and price > p or not is_buy and price < p:
                continue  # not at or through our price
            if price != p:  # traded through us: we were filled first
                fill = order.leaves
            else:
                order.traded_at_level += q
                if q <= order.ahead:
                    order.ahead -= q
                    continue
                fill = min(order.leaves, q - order.ahead)
                order.ahead = ZERO
            execs.append(self._fill(order, fill, order.price or p, maker=True, now_ns=now_ns))
            if order.leaves == 0:
                resting.remove(order)
        return execs


class DuplicateOrder(Exception):
    """The venue already has an order with this client id."""
