"""The backtest engine: recorded market events through the OMS's own rules (pure).

One loop over the time-ordered merge of the recordings (``backtest.data``), with a
simulated clock (the recording's receive times) and a heap of scheduled work (feed
deliveries, requests reaching a venue, answers reaching the OMS). For each order:

* ``orders.domain.lifecycle`` is its state machine (every change is an event applied
  by ``apply``; a report the lifecycle refuses is counted as ignored, as live);
* ``risk.checks.evaluate`` runs the pre-trade checks on a snapshot built from the run's
  state (limits from the configuration), and ``position_breach``/``daily_loss_breach``
  after each fill move the account's trading state to the limit's breach action
  (REDUCING or HALTED: working orders canceled, as the kill switch does);
* venue answers become execution reports through ``orders.reports.reports_from_answer``
  and lifecycle events through ``orders.reports.domain_event``, as in the workers;
* an answer lost (5xx, timeout, outage) leaves the order SUBMITTED, in doubt; the OMS's
  resolution asks the venue for the client order id after ``in_doubt_check_s``: what
  the venue has is applied, an order it never got is sent again with the same id after
  ``resend_min_age_s``, or rejected as STALE past ``resend_max_age_s``
  (``orders/venue_calls.py: sync_from_venue``);
* orders without a venue go through the router (``backtest.router``).

The strategy sees each venue's book after its feed latency; requests reach the venue
after the order latency; answers and execution reports come back after the response
latency, in order per order.
"""

from __future__ import annotations

import heapq
import logging
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from backtest.config import BacktestConfig, VenueConfig, constant_latency
from backtest.data import Bar, Depth, Event, Snapshot, Ticker, Trade
from backtest.latency import (
    ERROR_5XX,
    OK,
    OUTAGE,
    RATE_LIMITED,
    REJECT,
    TIMEOUT,
    FaultSampler,
    LatencySampler,
    stream,
)
from backtest.metrics import Metrics
from backtest.model import (
    BacktestError,
    BookView,
    Fill,
    Order,
    OrderInputError,
    TradeView,
    _dec,
)
from backtest.router import (
    child_changed,
    parent_cancel_requested,
    parent_filled,
    route_new,
)
from backtest.strategy import Strategy, StrategyParamError
from backtest.venue import DuplicateOrder, Execution, SimVenue, SourceBook
from marketdata.book import MdState
from orders.domain import lifecycle as lc
from orders.domain.positions import PositionState, apply_fill
from orders.reports import (
    ExecutionReport,
    ReportKind,
    domain_event,
    fill_report,
    reports_from_answer,
)
from risk import checks

log = logging.getLogger("oms.backtest")

ZERO = Decimal(0)
NS = 1_000_000_000
Status = lc.OrderStatus


# ---------------------------------------------------------------------------- venues


class VenueRuntime:
    """One simulated venue: its matching (exchange time), the feed's view of it (after
    the feed latency), latency and fault draws."""

    def __init__(self, config: VenueConfig, venue: SimVenue, view: SimVenue, seed: int) -> None:
        self.config, self.name = config, config.name
        self.venue, self.view = venue, view
        self.feed = LatencySampler(config.latency.feed, stream(seed, config.name, "feed"))
        self.order = LatencySampler(config.latency.order, stream(seed, config.name, "order"))
        self.response = LatencySampler(
            config.latency.response, stream(seed, config.name, "response")
        )
        self.faults = FaultSampler(config.faults, stream(seed, config.name, "faults"))
        self.lagged = view is not venue
        self.last_feed_ns = 0
        self.rate_limited_until = 0
        self.source: str | None = config.source
        self.queue: deque[tuple[int, int, Event]] = deque()  # the feed's deliveries


# ---------------------------------------------------------------------------- engine


class Backtest:
    """One run. ``run(events)`` drives it; ``metrics`` holds what happened."""

    def __init__(
        self,
        config: BacktestConfig,
        strategy: Strategy,
        *,
        params: dict[str, str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.params = params or {}
        self.progress = progress
        self.now_ns = 0
        self.start_ns: int | None = None
        self.heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = 0
        self.sources: dict[str, dict[str, SourceBook]] = {}  # source venue -> symbol -> book
        self.venues: dict[str, VenueRuntime] = {}
        self.orders: dict[str, Order] = {}
        self.open: dict[str, Order] = {}  # not terminal
        self.positions: dict[str, PositionState] = {}
        self.next_id = 0
        self.metrics = Metrics(config)
        self.ctx = StrategyContext(self)
        self.trading_state: dict[str, checks.StateRow] = {}  # "account" | symbol -> state
        self.submit_times: deque[int] = deque()
        self.fingerprints: dict[tuple[Any, ...], deque[int]] = {}
        self.started = False
        self.stopped = False
        # (source venue, symbol) -> its book and the simulated venues it stands for
        self.routes: dict[tuple[str, str], tuple[SourceBook, list[VenueRuntime]]] = {}
        self.feeds: list[VenueRuntime] = []  # the venues whose feed is late
        cls = type(strategy)
        self.wants_book = cls.on_book is not Strategy.on_book
        self.wants_trade = cls.on_trade is not Strategy.on_trade

    # ------------------------------------------------------------------ set-up

    def _setup_source(self, venue: str, symbol: str) -> SourceBook:
        books = self.sources.setdefault(venue, {})
        book = books.get(symbol)
        if book is None:
            book = books[symbol] = SourceBook(symbol)
            for rt in self._venues_for(venue):
                rt.venue.sources[symbol] = book
                if rt.lagged:
                    rt.view.sources[symbol] = SourceBook(symbol)
        return book

    def _venues_for(self, source: str) -> list[VenueRuntime]:
        out = []
        for rt in self.venues.values():
            if rt.source is None:
                rt.source = source  # the first recording a venue without a source sees
            if rt.source == source:
                out.append(rt)
        if not out and not self.config.venues:
            out.append(self._add_venue(VenueConfig(name=source, source=source)))
        return out

    def _add_venue(self, vc: VenueConfig) -> VenueRuntime:
        if self.config.latency_ms is not None:
            vc = replace(vc, latency=constant_latency(self.config.latency_ms))
        venue = SimVenue(vc, {}, queue_model=self.config.queue_model)
        lagged = not vc.latency.feed.is_zero
        view = SimVenue(vc, {}, queue_model=self.config.queue_model) if lagged else venue
        rt = VenueRuntime(vc, venue, view, self.config.seed)
        self.venues[vc.name] = rt
        if rt.lagged:
            self.feeds.append(rt)
        if self.start_ns is not None:
            self._schedule_outages(rt, self.start_ns)
        return rt

    def _schedule_outages(self, rt: VenueRuntime, start_ns: int) -> None:
        rt.faults.set_start(start_ns)
        for begin, end in rt.faults.outages_ns:
            self.at(begin, self._outage, rt, True)
            self.at(end, self._outage, rt, False)

    def _outage(self, rt: VenueRuntime, down: bool) -> None:
        """The venue stops (or resumes) answering and publishing. Its feed's book keeps
        being rebuilt meanwhile: on reconnection the handler takes a fresh snapshot."""
        rt.venue.down = rt.view.down = down
        self.metrics.outages.append({"ts": self.now_ns, "venue": rt.name, "down": down})

    # ------------------------------------------------------------------ scheduling

    def at(self, t_ns: int, fn: Callable[..., None], *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t_ns, self.seq, fn, args))

    def _run_due(self, until_ns: int) -> None:
        """Everything due by ``until_ns``, in time order (then in the order scheduled):
        the heap's work and the feeds' deliveries (one FIFO per lagged venue: a feed is
        in order, so it needs no heap)."""
        heap, feeds = self.heap, self.feeds
        while True:
            best: tuple[int, int] | None = None
            if heap and heap[0][0] <= until_ns:
                best = (heap[0][0], heap[0][1])
            queue = None
            for rt in feeds:
                q = rt.queue
                if q and q[0][0] <= until_ns and (best is None or (q[0][0], q[0][1]) < best):
                    best, queue = (q[0][0], q[0][1]), rt
            if best is None:
                return
            if best[0] > self.now_ns:
                self.now_ns = best[0]
            if queue is None:
                _, _, fn, args = heapq.heappop(heap)
                fn(*args)
            else:
                self._deliver_lagged(queue, queue.queue.popleft()[2])

    def _due(self, t: int) -> bool:
        if self.heap and self.heap[0][0] <= t:
            return True
        for rt in self.feeds:
            if rt.queue and rt.queue[0][0] <= t:
                return True
        return False

    # ------------------------------------------------------------------ the loop

    def run(self, events: Iterable[Event], *, total: int = 0) -> Metrics:
        for vc in self.config.venues:
            self._add_venue(vc)
        progress, count = self.progress, 0
        heap, feeds = self.heap, self.feeds
        metrics = self.metrics
        for ev in events:
            t = ev.ts_ns
            if self.start_ns is None:
                self._start(t)
            if (heap and heap[0][0] <= t) or (feeds and self._due(t)):
                self._run_due(t)
            if t > self.now_ns:
                self.now_ns = t
            count += 1
            self._market(ev)
            if metrics.next_sample_ns <= t:
                metrics.sample(self)
            if progress is not None and not count & 0x3FFF:
                progress(count, total)
            if self.stopped:
                break
        # what is still scheduled (answers in flight, in-doubt resolution) plays out
        self._run_due(self.now_ns + 3600 * NS)
        if self.start_ns is not None:
            self._call(self.strategy.on_stop, self.ctx)
            metrics.sample(self, force=True)
        metrics.events = count
        if progress is not None:
            progress(count, total)
        return metrics

    def _start(self, t: int) -> None:
        self.start_ns = self.now_ns = t
        for rt in self.venues.values():
            self._schedule_outages(rt, t)
        for at_s, scope, state, reason in self.config.kill_switch:
            self.at(t + int(at_s * NS), self._operator_state, scope, state, reason)
        self.metrics.start(t)

    def _market(self, ev: Event) -> None:
        kind = type(ev)
        if kind is Bar:
            self._bar(ev)  # type: ignore[arg-type]
            return
        route = self.routes.get((ev.venue, ev.symbol))
        if route is None:
            route = self._route(ev)
        src, runtimes = route
        if kind is Trade:
            if not src.has_book:  # trades alone: a one-level book around the last one
                src.ts_ns = ev.ts_ns
                src.on_trade_only(ev.price, ev.quantity)  # type: ignore[union-attr]
                for rt in runtimes:
                    if rt.venue.resting.get(ev.symbol) or rt.venue.consumed.get(ev.symbol):
                        self._executions(rt, rt.venue.on_book(ev.symbol, ev.ts_ns))
            for rt in runtimes:
                if rt.venue.resting.get(ev.symbol):
                    self._executions(
                        rt,
                        rt.venue.on_trade(ev.symbol, ev.price, ev.quantity, ev.side, ev.ts_ns),  # type: ignore[union-attr]
                    )
                if rt.lagged:
                    self._feed(rt, ev)
                elif self.wants_trade and not rt.venue.down:
                    self._deliver(rt, ev)
            return
        if kind is Ticker:
            src.on_ticker(ev)  # type: ignore[arg-type]
        elif kind is Depth:
            src.on_depth(ev)  # type: ignore[arg-type]
        else:
            src.on_snapshot(ev)  # type: ignore[arg-type]
        for rt in runtimes:
            venue = rt.venue
            if venue.resting.get(ev.symbol) or venue.consumed.get(ev.symbol):
                execs = venue.on_book(ev.symbol, ev.ts_ns)
                if execs:
                    self._executions(rt, execs)
            if rt.lagged:
                self._feed(rt, ev)
            elif self.wants_book and not venue.down:
                self._deliver(rt, ev)
        metrics = self.metrics
        if ev.ts_ns >= metrics.next_mid_ns:
            metrics.on_mid(self, ev.symbol, ev.ts_ns)

    def _route(self, ev: Event) -> tuple[SourceBook, list[VenueRuntime]]:
        """The first event of a recorded venue and symbol: its book, the simulated venues
        it stands for (and the strategy's start, on the very first)."""
        src = self.sources.get(ev.venue, {}).get(ev.symbol)
        if src is None:
            src = self._setup_source(ev.venue, ev.symbol)
            if not self.started:
                self.started = True
                self._start_strategy()
        runtimes = [rt for rt in self.venues.values() if rt.source == ev.venue]
        route = self.routes[(ev.venue, ev.symbol)] = (src, runtimes)
        return route

    def _bar(self, ev: Bar) -> None:
        """An OHLCV bar stands for a one-level book around its close (a tick either side)
        and a trade at the close for its volume."""
        step = Decimal(1).scaleb(ev.close.as_tuple().exponent)  # type: ignore[arg-type]
        close = ev.close
        qty = ev.volume if ev.volume > 0 else Decimal(1)
        self._market(
            Snapshot(
                ev.ts_ns, ev.venue, ev.symbol, None, [[close - step, qty]], [[close + step, qty]]
            )
        )
        self._market(Trade(ev.ts_ns, ev.venue, ev.symbol, close, qty, None))

    def _feed(self, rt: VenueRuntime, ev: Event) -> None:
        """The market event reaches the strategy through the venue's (late) feed."""
        lat = rt.feed.sample_ns(self.metrics.vol_bp(ev.symbol))
        t = ev.ts_ns + lat
        if t < rt.last_feed_ns:
            t = rt.last_feed_ns  # a feed is in order
        rt.last_feed_ns = t
        self.metrics.feed_latency(rt.name, lat)
        self.seq += 1
        rt.queue.append((t, self.seq, ev))

    def _deliver_lagged(self, rt: VenueRuntime, ev: Event) -> None:
        src = rt.view.sources.get(ev.symbol)
        if src is not None:
            if type(ev) is Depth:
                src.on_depth(ev)
            elif type(ev) is Ticker:
                src.on_ticker(ev)
            elif type(ev) is Snapshot:
                src.on_snapshot(ev)
            elif type(ev) is Trade and not src.has_book:
                src.ts_ns = ev.ts_ns
                src.on_trade_only(ev.price, ev.quantity)
        if not rt.view.down:
            self._deliver(rt, ev)

    def _deliver(self, rt: VenueRuntime, ev: Event) -> None:
        if type(ev) is Trade:
            if self.wants_trade:
                assert isinstance(ev, Trade)
                v = rt.view
                view = TradeView(
                    self.now_ns,
                    rt.name,
                    ev.symbol,
                    v.to_venue(ev.price, ev.side == "sell"),
                    v.qty(ev.quantity),
                    ev.side,
                )
                self._call(self.strategy.on_trade, self.ctx, view)
        elif self.wants_book:
            self._call(self.strategy.on_book, self.ctx, self.ctx.book_view(rt, ev.symbol))

    def _start_strategy(self) -> None:
        """``on_start``: a strategy that cannot start stops the run with the reason."""
        try:
            self.strategy.on_start(self.ctx)
        except StrategyParamError as exc:
            raise BacktestError(str(exc)) from None
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            raise BacktestError(
                f"{type(self.strategy).__name__}.on_start raised {type(exc).__name__}: {exc}"
                f" ({where.filename}:{where.lineno})"
            ) from None

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        """A strategy callback; what it raises is counted and shown, the run goes on
        (after ``MAX_STRATEGY_ERRORS`` the run stops with the last one)."""
        try:
            fn(*args)
        except OrderInputError as exc:
            frames = [
                f
                for f in traceback.extract_tb(exc.__traceback__)
                if not f.filename.endswith("backtest/engine.py")
            ]
            at = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
            if self.metrics.strategy_error(self.now_ns, f"{fn.__name__}: {exc}{at}"):
                self.stopped = True
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            message = f"{fn.__name__} raised {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
            if self.metrics.strategy_error(self.now_ns, message):
                self.stopped = True

    # ------------------------------------------------------------------ OMS: submit

    def new_id(self) -> str:
        self.next_id += 1
        return f"bt-{self.next_id}"

    def submit(
        self,
        *,
        symbol: str,
        side: str,
        type: str,
        quantity: Any,
        price: Any = None,
        time_in_force: str = "GTC",
        venue: str | None = None,
        parent: str | None = None,
    ) -> str:
        side, type, tif = str(side).lower(), str(type).lower(), str(time_in_force).upper()
        if side not in ("buy", "sell"):
            raise OrderInputError(f"side: {side!r} is not buy or sell")
        if type not in ("market", "limit"):
            raise OrderInputError(f"type: {type!r} is not market or limit")
        if tif not in ("GTC", "IOC", "FOK"):
            raise OrderInputError(f"time_in_force: {tif!r} is not GTC, IOC or FOK")
        qty = _dec("quantity", quantity)
        px = None if price is None else _dec("price", price)
        if type == "limit" and px is None:
            raise OrderInputError("price: a limit order needs a price")
        if type == "market":
            px = None
        if venue is not None and venue not in self.venues:
            raise OrderInputError(
                f"venue: {venue!r} is not one of {', '.join(sorted(self.venues))}"
            )
        if not self.venues:
            raise OrderInputError("no venue yet: orders can be sent once market data has arrived")
        if venue is None and len(self.venues) == 1:
            venue = next(iter(self.venues))
        order = Order(
            client_order_id=self.new_id(),
            parent=parent,
            venue=venue,
            symbol=symbol,
            side=side,
            type=type,
            quantity=qty,
            price=px,
            time_in_force=tif,
            state=lc.new_order(quantity=qty, price=px),
            created_ns=self.now_ns,
        )
        self.orders[order.client_order_id] = self.open[order.client_order_id] = order
        self.metrics.order_created(order)
        reasons = self._risk(order)
        if reasons:
            self._event(order, lc.OrderDenied(reasons=tuple(r.message for r in reasons)))
            order.reason = "; ".join(r.message for r in reasons)
            for r in reasons:
                self.metrics.denials[r.check] += 1
            self._changed(order)
            return order.client_order_id
        self._note_submitted(order)
        if venue is None:
            route_new(self, order)
            return order.client_order_id
        self._event(order, lc.OrderSubmitted())
        self._send_new(order)
        return order.client_order_id

    def new_child(
        self, parent: Order, *, venue: str, quantity: Decimal, price: Decimal | None, tif: str
    ) -> Order:
        """A routed child of ``parent`` (risk counted the parent once: no second check)."""
        child = Order(
            client_order_id=f"{parent.client_order_id}.{len(parent.children) + 1}",
            parent=parent.client_order_id,
            venue=venue,
            symbol=parent.symbol,
            side=parent.side,
            type="limit" if price is not None else "market",
            quantity=quantity,
            price=price,
            time_in_force=tif,
            state=lc.new_order(quantity=quantity, price=price),
            created_ns=self.now_ns,
        )
        parent.children.append(child.client_order_id)
        self.orders[child.client_order_id] = self.open[child.client_order_id] = child
        self.metrics.order_created(child)
        self._event(child, lc.OrderSubmitted())
        self._send_new(child)
        return child

    def _note_submitted(self, order: Order) -> None:
        self.submit_times.append(self.now_ns)
        key = (order.symbol, order.side, order.type, order.quantity, order.price)
        self.fingerprints.setdefault(key, deque()).append(self.now_ns)

    # ------------------------------------------------------------------ OMS: risk

    def reference(
        self, symbol: str, venue: str | None
    ) -> tuple[Decimal | None, float | None, str | None]:
        """The consolidated mid of the LIVE venues as the OMS's feed shows them, its age,
        and why it is not to be trusted (the order's venue not LIVE)."""
        mids, newest, problem = [], 0, None
        for rt in self.venues.values():
            state = rt.view.state(symbol)
            if rt.name == venue and state != MdState.LIVE:
                problem = f"{rt.name} {symbol} market data is {state.value}"
            if state != MdState.LIVE:
                continue
            mid = rt.view.mid(symbol)
            if mid is not None:
                mids.append(mid)
                src = rt.view.sources.get(symbol)
                newest = max(newest, src.ts_ns if src is not None else 0)
        if not mids:
            return None, None, problem or f"no venue has LIVE market data for {symbol}"
        return sum(mids, ZERO) / len(mids), max(0.0, (self.now_ns - newest) / NS), problem

    def _risk(self, order: Order) -> list[checks.Reason]:
        cfg = self.config
        now = self.now_ns
        window = now - NS
        while self.submit_times and self.submit_times[0] <= window:
            self.submit_times.popleft()
        limits = checks.Limits(**{k: v for k, v in cfg.risk.limits.items()})
        dup_window = int(float(limits.duplicate_window_s or 0) * NS)
        dups = self.fingerprints.get(
            (order.symbol, order.side, order.type, order.quantity, order.price)
        )
        if dups:
            while dups and dups[0] <= now - dup_window:
                dups.popleft()
        ref, age, problem = self.reference(order.symbol, order.venue)
        position = self.positions.get(order.symbol, PositionState()).quantity
        sign = 1 if order.side == "buy" else -1
        working_same = ZERO
        open_orders = 0
        gross = ZERO
        own_opposite: Decimal | None = None
        own_opposite_market = False
        for o in self.open.values():
            if o is order or o.is_terminal:
                continue
            if o.parent is None:  # a parent counts once, its children not again
                open_orders += 1
                px = o.price if o.price is not None else (ref or ZERO)
                gross += o.leaves_quantity * px
                if o.symbol == order.symbol and o.side == order.side:
                    working_same += o.leaves_quantity
            if o.venue is not None and o.symbol == order.symbol and o.side != order.side:
                if order.venue is None or o.venue == order.venue:
                    if o.price is None:
                        own_opposite_market = True
                    elif own_opposite is None or (
                        o.price < own_opposite if order.side == "buy" else o.price > own_opposite
                    ):
                        own_opposite = o.price
        for sym, pos in self.positions.items():
            mark = self.mark(sym)
            if pos.quantity and mark is not None:
                gross += abs(pos.quantity) * mark
        tick = lot = min_notional = ZERO
        if order.venue is not None:
            vc = self.venues[order.venue].config
            tick, lot, min_notional = vc.tick_size, vc.lot_size, vc.min_notional
        state = checks.effective_state(
            [
                row
                for row in (self.trading_state.get("account"), self.trading_state.get(order.symbol))
                if row
            ]
        )
        snapshot = checks.Snapshot.build(
            symbol=order.symbol,
            side_sign=sign,
            is_market=order.type == "market",
            quantity=order.quantity,
            price=order.price,
            tick_size=tick,
            lot_size=lot,
            min_notional=min_notional,
            trading_state=state,
            limits=limits,
            limit_scope=f"{cfg.account} {order.symbol}",
            reference_price=ref,
            reference_age_s=age,
            reference_problem=problem if order.type == "market" else None,
            position=position,
            working_same_side=working_same,
            gross_exposure=gross,
            open_orders=open_orders,
            orders_last_second=len(self.submit_times),
            duplicates_in_window=len(dups) if dups else 0,
            own_opposite_best=own_opposite,
            own_opposite_market=own_opposite_market,
            daily_pnl=self.metrics.pnl_total(self),
        )
        return checks.evaluate(snapshot)

    def mark(self, symbol: str) -> Decimal | None:
        for rt in self.venues.values():
            mid = rt.venue.mid(symbol)
            if mid is not None:
                return mid
        return None

    def _post_trade(self, symbol: str, fill_id: str) -> None:
        """A breached max position or daily loss moves its scope to the breach action."""
        limits = self.config.risk.limits
        actions = self.config.risk.breach_actions
        pos = self.positions.get(symbol, PositionState()).quantity
        breach = checks.position_breach(pos, limits.get(checks.LimitKind.MAX_POSITION))
        if breach is not None:
            state = actions.get(checks.LimitKind.MAX_POSITION, "REDUCING")
            self._set_state(symbol, state, f"after fill {fill_id}: {breach.message}", specificity=3)
        breach = checks.daily_loss_breach(
            self.metrics.pnl_total(self), limits.get(checks.LimitKind.MAX_DAILY_LOSS)
        )
        if breach is not None:
            state = actions.get(checks.LimitKind.MAX_DAILY_LOSS, "HALTED")
            self._set_state(
                "account", state, f"after fill {fill_id}: {breach.message}", specificity=2
            )

    def _operator_state(self, scope: str, state: str, reason: str) -> None:
        """A kill-switch change the configuration schedules (an operator's: it may release)."""
        if state == "ACTIVE":
            if self.trading_state.pop(scope, None) is not None:
                label = f"account {self.config.account}" + (
                    "" if scope == "account" else f" {scope}"
                )
                self.metrics.kill_switch.append(
                    {"ts": self.now_ns, "scope": label, "state": state, "reason": reason}
                )
            return
        self._set_state(
            scope, state, reason, specificity=2 if scope == "account" else 3, escalate_only=False
        )

    def _set_state(
        self, scope: str, state: str, reason: str, *, specificity: int, escalate_only: bool = True
    ) -> None:
        current = self.trading_state.get(scope)
        if (
            escalate_only
            and current is not None
            and checks.SEVERITY[current.state] >= checks.SEVERITY[state]
        ):
            return  # escalate only
        label = f"account {self.config.account}" + ("" if scope == "account" else f" {scope}")
        self.trading_state[scope] = checks.StateRow(
            state=state, label=label, reason=reason, specificity=specificity
        )
        self.metrics.kill_switch.append(
            {"ts": self.now_ns, "scope": label, "state": state, "reason": reason}
        )
        if state == "HALTED":  # the kill switch cancels what is working in its scope
            for o in list(self.open.values()):
                if (
                    o.venue is not None
                    and not o.is_terminal
                    and (scope == "account" or o.symbol == scope)
                ):
                    self.cancel(o.client_order_id)

    # ------------------------------------------------------------------ OMS: venue work

    def _arrival(self, order: Order, rt: VenueRuntime) -> int:
        t = self.now_ns + rt.order.sample_ns(self.metrics.vol_bp(order.symbol))
        if t < order.last_arrival_ns:
            t = order.last_arrival_ns
        order.last_arrival_ns = t
        return t

    def _answer_at(self, order: Order, rt: VenueRuntime, base_ns: int | None = None) -> int:
        t = (self.now_ns if base_ns is None else base_ns) + rt.response.sample_ns(
            self.metrics.vol_bp(order.symbol)
        )
        if t < order.last_answer_ns:
            t = order.last_answer_ns
        order.last_answer_ns = t
        return t

    def _send_new(self, order: Order) -> None:
        assert order.venue is not None
        rt = self.venues[order.venue]
        order.sent_ns = self.now_ns
        if self.now_ns < rt.rate_limited_until:  # the OMS's own limiter holds it back
            self.at(rt.rate_limited_until, self._send_new, order)
            return
        self.at(self._arrival(order, rt), self._venue_new, order, rt, self.now_ns)

    def _venue_new(self, order: Order, rt: VenueRuntime, sent_ns: int) -> None:
        draw = rt.faults.draw(self.now_ns)
        outcome = draw.outcome
        if outcome == RATE_LIMITED:
            self.metrics.rejects["429 (retried)"] += 1
            retry = self.now_ns + int(rt.config.faults.retry_after_s * NS)
            rt.rate_limited_until = max(rt.rate_limited_until, retry)
            self.at(self._answer_at(order, rt), self._retry_later, order, retry)
            return
        if outcome == REJECT:
            self.at(self._answer_at(order, rt), self._apply, order, [_reject(draw.reason)], "venue")
            return
        if outcome == OUTAGE or not draw.executed and outcome in (ERROR_5XX, TIMEOUT):
            self._lost(order, rt, outcome, sent_ns)
            return
        try:
            sim, execs = rt.venue.place(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                type=order.type,
                quantity=order.quantity,
                price=order.price,
                time_in_force=order.time_in_force,
                now_ns=self.now_ns,
            )
        except DuplicateOrder:  # a resend of an order the venue has: ask it
            self._lost(order, rt, ERROR_5XX, sent_ns)
            return
        for ex in execs:
            self.metrics.executed(rt.name, ex, rt.venue.mid(order.symbol))
        if outcome != OK:  # executed, but the answer is lost
            self._lost(order, rt, outcome, sent_ns)
            return
        reports = reports_from_answer(
            sim.answer(), time_in_force=order.time_in_force, source="venue"
        )
        self.at(self._answer_at(order, rt), self._apply, order, reports, "venue")

    def _retry_later(self, order: Order, retry_ns: int) -> None:
        self.at(max(retry_ns, self.now_ns), self._send_new, order)

    def _lost(self, order: Order, rt: VenueRuntime, outcome: str, sent_ns: int) -> None:
        """The answer does not come: the OMS learns of the error (5xx) or gives up
        waiting (timeout), and the order is in doubt."""
        when = (
            sent_ns + int(rt.config.faults.timeout_s * NS)
            if outcome == TIMEOUT
            else self._answer_at(order, rt)
        )
        self.at(max(when, self.now_ns), self._in_doubt, order, outcome)

    def _in_doubt(self, order: Order, outcome: str) -> None:
        if order.is_terminal:
            return
        if not order.in_doubt:
            order.in_doubt = True
            self.metrics.in_doubt_causes[outcome] += 1
        self.at(self.now_ns + int(self.config.in_doubt_check_s * NS), self._resolve, order)

    def _resolve(self, order: Order) -> None:
        """In-doubt resolution: ask the venue for the client order id."""
        if order.is_terminal or order.state.status is not Status.SUBMITTED:
            if order.in_doubt:
                order.in_doubt = False
                self.metrics.in_doubt["resolved by later reports"] += 1
            return
        assert order.venue is not None
        rt = self.venues[order.venue]
        self.at(self._arrival(order, rt), self._venue_fetch, order, rt)

    def _venue_fetch(self, order: Order, rt: VenueRuntime) -> None:
        draw = rt.faults.draw(self.now_ns, can_reject=False)
        if draw.outcome != OK:  # asked again later
            self.at(self._answer_at(order, rt), self._in_doubt, order, draw.outcome)
            return
        sim = rt.venue.fetch(order.client_order_id)
        answer = None if sim is None else sim.answer()
        self.at(self._answer_at(order, rt), self._fetched, order, answer)

    def _fetched(self, order: Order, answer: Any) -> None:
        if order.is_terminal or order.state.status is not Status.SUBMITTED:
            self._resolve(order)
            return
        order.in_doubt = False
        if answer is not None:
            self.metrics.in_doubt["resolved: executed at venue"] += 1
            self._apply(
                order,
                reports_from_answer(answer, time_in_force=order.time_in_force, source="recon"),
                "recon",
            )
            return
        age_s = (self.now_ns - order.created_ns) / NS
        if age_s > self.config.resend_max_age_s:
            venue = order.venue or "the venue"
            reason = (
                f"STALE: never reached {venue}; not sent again {age_s:.0f}s after it was placed"
                f" (max {self.config.resend_max_age_s:.0f}s)"
            )
            self.metrics.in_doubt["resolved: never reached venue, rejected stale"] += 1
            self._apply(order, [_reject(reason, source="recon")], "recon")
            return
        self.metrics.in_doubt["resolved: never reached venue, sent again"] += 1
        resend_at = max(self.now_ns, order.sent_ns + int(self.config.resend_min_age_s * NS))
        self.at(resend_at, self._send_new, order)

    # ------------------------------------------------------------------ OMS: cancel, amend

    def cancel(self, client_order_id: str) -> bool:
        order = self.orders.get(client_order_id)
        if order is None:
            raise OrderInputError(f"cancel: no order {client_order_id!r}")
        if order.is_terminal:
            return False
        if order.venue is None:  # a parent: cancel its children
            for cid in order.children:
                self.cancel(cid)
            parent_cancel_requested(self, order)
            return True
        if order.state.status in (Status.PENDING_CANCEL, Status.PENDING_REPLACE):
            return False
        self._event(order, lc.OrderCancelRequested())
        self._changed(order)
        self._send_cancel(order)
        return True

    def _send_cancel(self, order: Order) -> None:
        if order.state.status is not Status.PENDING_CANCEL:
            return
        assert order.venue is not None
        rt = self.venues[order.venue]
        self.at(self._arrival(order, rt), self._venue_cancel, order, rt)

    def _venue_cancel(self, order: Order, rt: VenueRuntime) -> None:
        draw = rt.faults.draw(self.now_ns, can_reject=False)
        if draw.outcome != OK:
            if draw.executed and draw.outcome in (ERROR_5XX, TIMEOUT):
                rt.venue.cancel(order.client_order_id)  # done, but the answer is lost
            wait = rt.config.faults.retry_after_s if draw.outcome == RATE_LIMITED else 0.5
            # live: an unanswered cancel is sent again soon (venue_calls.cancel)
            self.at(self._answer_at(order, rt) + int(wait * NS), self._send_cancel, order)
            return
        sim = rt.venue.cancel(order.client_order_id)
        if sim is not None:
            reports = reports_from_answer(
                sim.answer(), time_in_force=order.time_in_force, source="venue"
            )
        else:  # Unknown order: ask the venue what it knows (sync_from_venue, not_found="canceled")
            known = rt.venue.fetch(order.client_order_id)
            if known is None:
                reports = [
                    ExecutionReport(
                        kind=ReportKind.CANCELED, source="recon", reason="not found at venue"
                    )
                ]
            else:
                reports = reports_from_answer(
                    known.answer(), time_in_force=order.time_in_force, source="recon"
                )
        self.at(self._answer_at(order, rt), self._apply, order, reports, "venue")

    def amend(self, client_order_id: str, quantity: Any = None, price: Any = None) -> bool:
        order = self.orders.get(client_order_id)
        if order is None:
            raise OrderInputError(f"amend: no order {client_order_id!r}")
        qty = None if quantity is None else _dec("quantity", quantity)
        px = None if price is None else _dec("price", price)
        if order.venue is None or order.state.status not in (
            Status.ACCEPTED,
            Status.PARTIALLY_FILLED,
        ):
            return False
        try:
            self._event(order, lc.OrderReplaceRequested(quantity=qty, price=px))
        except lc.LifecycleError as exc:
            raise OrderInputError(f"amend {client_order_id}: {exc}") from None
        self._changed(order)
        rt = self.venues[order.venue]
        self.at(self._arrival(order, rt), self._venue_amend, order, rt, qty, px)
        return True

    def _venue_amend(
        self, order: Order, rt: VenueRuntime, qty: Decimal | None, px: Decimal | None
    ) -> None:
        draw = rt.faults.draw(self.now_ns)
        if draw.outcome == RATE_LIMITED:
            self.at(
                self._answer_at(order, rt) + int(rt.config.faults.retry_after_s * NS),
                self._retry_amend,
                order,
                rt,
                qty,
                px,
            )
            return
        if draw.outcome == REJECT or (draw.outcome != OK and not draw.executed):
            reports = [
                ExecutionReport(
                    kind=ReportKind.REPLACE_REJECTED, source="venue", reason=draw.reason
                )
            ]
            self.at(self._answer_at(order, rt), self._apply, order, reports, "venue")
            return
        sim, execs = rt.venue.amend(
            order.client_order_id, quantity=qty, price=px, now_ns=self.now_ns
        )
        for ex in execs:
            self.metrics.executed(rt.name, ex, rt.venue.mid(order.symbol))
        if sim is None:  # too late: filled or gone; the replace is refused, the truth applied
            reports = [
                ExecutionReport(
                    kind=ReportKind.REPLACE_REJECTED,
                    source="venue",
                    reason="-2011: Unknown order sent.",
                )
            ]
            known = rt.venue.fetch(order.client_order_id)
            if known is not None:
                reports += reports_from_answer(
                    known.answer(), time_in_force=order.time_in_force, source="recon"
                )
        else:
            reports = [
                ExecutionReport(
                    kind=ReportKind.REPLACED,
                    source="venue",
                    quantity=sim.quantity,
                    price=sim.price if order.type == "limit" else None,
                )
            ]
            reports += [
                r
                for r in reports_from_answer(
                    sim.answer(), time_in_force=order.time_in_force, source="venue"
                )
                if r.kind != ReportKind.ACK
            ]
        # an answer lost after the venue acted is settled by asking it (same reports)
        self.at(self._answer_at(order, rt), self._apply, order, reports, "venue")

    def _retry_amend(
        self, order: Order, rt: VenueRuntime, qty: Decimal | None, px: Decimal | None
    ) -> None:
        if order.state.status is Status.PENDING_REPLACE:
            self.at(self._arrival(order, rt), self._venue_amend, order, rt, qty, px)

    # ------------------------------------------------------------------ executions and reports

    def _executions(self, rt: VenueRuntime, execs: list[Execution]) -> None:
        """Resting orders traded at the venue: their reports reach the OMS later."""
        for ex in execs:
            order = self.orders.get(ex.order.client_order_id)
            if order is None:  # pragma: no cover - every venue order is ours
                continue
            self.metrics.executed(rt.name, ex, rt.venue.mid(order.symbol))
            reports = [fill_report(ex.trade, source="stream")]
            self.at(self._answer_at(order, rt), self._apply, order, reports, "stream")

    def _apply(self, order: Order, reports: list[ExecutionReport], source: str) -> None:
        """Execution reports through the lifecycle, as ``orders.engine.process`` does."""
        changed = False
        for report in reports:
            if report.kind == ReportKind.FILL and str(report.trade_id) in order.trade_ids:
                continue  # known fill (deduplicated on the venue's trade id)
            st = order.state
            event = domain_event(
                report,
                quantity=st.quantity,
                pending_quantity=st.pending_quantity,
                pending_price=st.pending_price,
            )
            try:
                transition = lc.apply(st, event)
            except lc.LifecycleError as exc:
                if report.kind != ReportKind.ACK:
                    self.metrics.reports_ignored[f"{report.kind.value}: {type(exc).__name__}"] += 1
                continue
            if transition.noop and report.kind != ReportKind.FILL:
                continue
            order.state = transition.state
            changed = True
            if order.ack_ns is None and report.kind in (
                ReportKind.ACK,
                ReportKind.REJECT,
                ReportKind.FILL,
            ):
                order.ack_ns = self.now_ns
                assert order.venue is not None
                self.metrics.ack(order.venue, self.now_ns - order.created_ns)
            if (
                report.kind in (ReportKind.REJECT, ReportKind.CANCELED, ReportKind.EXPIRED)
                and report.reason
            ):
                order.reason = report.reason
            if report.kind == ReportKind.REJECT:
                self.metrics.rejects[_reason_key(report.reason)] += 1
            if report.kind == ReportKind.REPLACED:
                order.quantity = order.state.quantity
                order.price = order.state.price
            if report.kind == ReportKind.FILL:
                self._fill(order, report, late=transition.late)
        if changed:
            if order.is_terminal and order.done_ns is None:
                order.done_ns = self.now_ns
            self._changed(order)

    def _fill(self, order: Order, report: ExecutionReport, *, late: bool) -> None:
        assert report.quantity is not None and report.price is not None and order.venue is not None
        trade_id = str(report.trade_id)
        order.trade_ids.add(trade_id)
        fee = report.fee or ZERO
        order.fees += fee
        pos = self.positions.get(order.symbol, PositionState())
        self.positions[order.symbol] = apply_fill(
            pos, side=order.side, quantity=report.quantity, price=report.price, fee_quote=fee
        )
        ex_ns, mid = self.metrics.execution_info(trade_id)
        fill = Fill(
            ts_ns=self.now_ns,
            exec_ns=ex_ns if ex_ns is not None else self.now_ns,
            client_order_id=order.client_order_id,
            parent=order.parent,
            venue=order.venue,
            symbol=order.symbol,
            side=order.side,
            quantity=report.quantity,
            price=report.price,
            fee=fee,
            liquidity="maker" if report.is_maker else "taker",
            mid=mid,
        )
        self.metrics.fill(self, fill, late=late)
        if order.parent is not None and order.parent in self.orders:
            parent_filled(self, self.orders[order.parent], order, report)
        self._call(self.strategy.on_fill, self.ctx, fill)
        self._post_trade(order.symbol, trade_id)

    def _apply_parent(self, parent: Order, event: lc.OrderEvent) -> None:
        """An event of a parent order (the router's decisions and its children's fills)."""
        try:
            transition = lc.apply(parent.state, event)
        except lc.LifecycleError as exc:
            self.metrics.reports_ignored[f"parent {event.kind}: {type(exc).__name__}"] += 1
            return
        if transition.noop:
            return
        parent.state = transition.state
        reason = (
            "; ".join(event.reasons)
            if isinstance(event, lc.OrderDenied)
            else getattr(event, "reason", "")
        )
        if isinstance(reason, str) and reason and parent.is_terminal:
            parent.reason = reason
        if parent.ack_ns is None and event.kind in (
            "OrderAccepted",
            "OrderFilled",
            "OrderRejected",
        ):
            parent.ack_ns = self.now_ns
        if parent.is_terminal and parent.done_ns is None:
            parent.done_ns = self.now_ns
        self._changed(parent)

    def _event(self, order: Order, event: lc.OrderEvent) -> None:
        order.state = lc.apply(order.state, event).state
        if order.is_terminal and order.done_ns is None:
            order.done_ns = self.now_ns

    def _changed(self, order: Order) -> None:
        if order.is_terminal:
            self.open.pop(order.client_order_id, None)
        if order.parent is not None and order.parent in self.orders:
            child_changed(self, self.orders[order.parent], order)
        self._call(self.strategy.on_order, self.ctx, order)


def _reject(reason: str, *, source: str = "venue") -> ExecutionReport:
    return ExecutionReport(kind=ReportKind.REJECT, source=source, reason=reason)


def _reason_key(reason: str) -> str:
    """Rejects counted by reason: the code or first words, not the numbers in it."""
    if reason.startswith("STALE"):
        return "STALE"
    return reason.split(":", 1)[0] + (
        ": " + reason.split(":", 1)[1].strip()[:40] if ":" in reason else ""
    )


# ---------------------------------------------------------------------------- the context


class StrategyContext:
    """What the strategy is given: the clock, orders, positions, books (after latency)."""

    def __init__(self, bt: Backtest) -> None:
        self._bt = bt
        self.params = bt.params
        self._views: dict[tuple[str, str], BookView] = {}

    @property
    def now(self) -> float:
        return self._bt.now_ns / NS

    @property
    def now_ns(self) -> int:
        return self._bt.now_ns

    @property
    def venues(self) -> list[str]:
        return list(self._bt.venues)

    def submit(self, **kw: Any) -> str:
        return self._bt.submit(**kw)

    def cancel(self, client_order_id: str) -> bool:
        return self._bt.cancel(client_order_id)

    def amend(self, client_order_id: str, quantity: Any = None, price: Any = None) -> bool:
        return self._bt.amend(client_order_id, quantity=quantity, price=price)

    def order(self, client_order_id: str) -> Order | None:
        return self._bt.orders.get(client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            o
            for o in self._bt.orders.values()
            if not o.is_terminal and o.parent is None and (symbol is None or o.symbol == symbol)
        ]

    def position(self, symbol: str) -> Decimal:
        pos = self._bt.positions.get(symbol)
        return ZERO if pos is None else pos.quantity

    def book_view(self, rt: VenueRuntime, symbol: str) -> BookView:
        key = (rt.name, symbol)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = BookView(rt.view, symbol)
        return view

    def book(self, symbol: str, venue: str | None = None) -> BookView | None:
        bt = self._bt
        if venue is not None:
            rt = bt.venues.get(venue)
            return (
                None if rt is None or symbol not in rt.view.sources else self.book_view(rt, symbol)
            )
        for rt in bt.venues.values():
            if symbol in rt.view.sources:
                return self.book_view(rt, symbol)
        return None

    def log(self, message: str) -> None:
        self._bt.metrics.log(self._bt.now_ns, message)


__all__ = [
    "Backtest",
    "BacktestError",
    "BookView",
    "Fill",
    "Order",
    "OrderInputError",
    "StrategyContext",
    "TradeView",
]
