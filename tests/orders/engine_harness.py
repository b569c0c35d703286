"""In-process harness for the execution engine (the middle of the test pyramid).

The pattern of NautilusTrader's ``MockExecutionClient`` and ``TestClock``: the real
engine, writer, lifecycle, risk and database, with the venue and time replaced.

* ``ScriptedVenue``: a fake venue adapter whose answers are scripted per call
  (``venue.on_submit(fill("0.004", "60000"), ack())``); unscripted calls get a sensible
  default from its own book of orders (by client order id). Every call that reaches it is
  kept in ``venue.requests``.
* ``TestClock``: a settable, advanceable clock for ``engine.clock``.
* ``Harness`` (``installed(monkeypatch)``, the body of the ``harness`` fixture):
  installs both, collects the venue work ``engine.dispatch`` queues, and runs it
  synchronously with ``run_queued()``, deciding what follows each ``Outcome`` as
  ``orders/tasks.py`` does (resolve, resend, retry) without running the follow-up: it is
  queued for the next ``run_queued()``, so a test can advance the clock or script the
  venue in between.

Transactions: the engine queues venue work with ``transaction.on_commit``. The fixture
needs ``transactional_db`` (pytest-django's ``transaction=True``): every engine call
commits for real, so on-commit callbacks (``engine.dispatch``, the live push) run exactly
as in production and "durable before send" holds, with no per-call wrapping in
``django_capture_on_commit_callbacks``. The price is a table flush after each test.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from orders import engine, tasks, venue_calls
from orders.domain.commands import SubmitOrder
from orders.models import Order
from orders.venue_calls import Outcome
from venues.base import (
    Balance,
    Capabilities,
    OrderBook,
    OrderRequest,
    VenueAdapter,
    VenueInDoubt,
    VenueOrder,
    VenueOrderNotFound,
    VenueOrderStatus,
    VenueRateLimited,
    VenueRejected,
    VenueTrade,
    VenueUnavailable,
)

D = Decimal
REFERENCE_PRICE = "60000"


class TestClock:
    """``engine.clock``: starts at the real time (rows carry real timestamps)."""

    __test__ = False  # not a test class

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or timezone.now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self.now = when


# --- the fake venue ----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request that reached the venue."""

    method: str  # submit_order | cancel_order | amend_order | fetch_order | fetch_...
    client_order_id: str | None = None
    request: OrderRequest | None = None  # submit_order
    new_client_order_id: str | None = None  # amend_order
    quantity: Decimal | None = None  # amend_order
    price: Decimal | None = None  # amend_order


@dataclass
class BookEntry:
    """An order as the venue holds it."""

    venue_order_id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str = "GTC"
    status: VenueOrderStatus = VenueOrderStatus.NEW
    trades: list[VenueTrade] = field(default_factory=list)

    @property
    def filled(self) -> Decimal:
        return sum((t.quantity for t in self.trades), D(0))

    def snapshot(self) -> VenueOrder:
        notional = sum((t.quantity * t.price for t in self.trades), D(0))
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
            average_price=notional / self.filled if self.trades else None,
            trades=tuple(self.trades),
        )


# An answer: what the venue does with one call; returns the order or raises a VenueError.
Answer = Callable[["ScriptedVenue", Call], VenueOrder]


def ack() -> Answer:
    """submit: the venue takes the order and it rests (an IOC/FOK one expires)."""
    return lambda venue, call: venue.settle_ioc(venue.take(call)).snapshot()


def fill(quantity: str, price: str) -> Answer:
    """submit: taken and traded at once; cancel: traded just before the cancel arrived,
    the rest canceled; fetch: traded since, then looked up."""

    def answer(venue: ScriptedVenue, call: Call) -> VenueOrder:
        entry = venue.take(call) if call.method == "submit_order" else venue.entry(call)
        venue.trade(entry.client_order_id, quantity, price)
        if call.method == "cancel_order" and entry.status.value in _OPEN:
            entry.status = VenueOrderStatus.CANCELED
        return venue.settle_ioc(entry).snapshot()

    return answer


def canceled() -> Answer:
    """cancel: the order is canceled (the default)."""

    def answer(venue: ScriptedVenue, call: Call) -> VenueOrder:
        entry = venue.entry(call)
        if entry.status.value not in _OPEN:
            raise VenueOrderNotFound(f"order {entry.client_order_id} is closed")
        entry.status = VenueOrderStatus.CANCELED
        return entry.snapshot()

    return answer


def found() -> Answer:
    """fetch: the order as the venue's book has it (the default)."""
    return lambda venue, call: venue.entry(call).snapshot()


def replaced() -> Answer:
    """amend: cancel-replace; the new order rests under the new client order id."""

    def answer(venue: ScriptedVenue, call: Call) -> VenueOrder:
        old = venue.entry(call)
        old.status = VenueOrderStatus.CANCELED
        assert call.new_client_order_id and call.quantity is not None
        new = BookEntry(
            venue_order_id=venue.next_id("V"),
            client_order_id=call.new_client_order_id,
            symbol=old.symbol,
            side=old.side,
            type=old.type,
            quantity=call.quantity - old.filled,
            price=call.price,
        )
        venue.book[new.client_order_id] = new
        return new.snapshot()

    return answer


def reject(reason: str = "rejected") -> Answer:
    def answer(venue: ScriptedVenue, call: Call) -> VenueOrder:
        raise VenueRejected(reason)

    return answer


def in_doubt(then: Answer | None = None, reason: str = "timeout") -> Answer:
    """The answer is lost (timeout). ``then``: what the venue did anyway; None: the
    request never arrived."""

    def answer(venue: ScriptedVenue, call: Call) -> VenueOrder:
        if then is not None:
            then(venue, call)
        raise VenueInDoubt(reason)

    return answer


def rate_limited(after: float = 1.0) -> Answer:
    def answer(venue: ScriptedVenue, call: Call) -> VenueOrder:
        raise VenueRateLimited("429 too many requests", retry_after=after)

    return answer


def not_found() -> Answer:
    def answer(venue: ScriptedVenue, call: Call) -> VenueOrder:
        raise VenueOrderNotFound("unknown order")

    return answer


def unavailable() -> Answer:
    def answer(venue: ScriptedVenue, call: Call) -> VenueOrder:
        raise VenueUnavailable("circuit breaker open")

    return answer


_OPEN = {VenueOrderStatus.NEW.value, VenueOrderStatus.PARTIALLY_FILLED.value}
_DEFAULTS: dict[str, Answer] = {
    "submit_order": ack(),
    "cancel_order": canceled(),
    "amend_order": replaced(),
    "fetch_order": found(),
}


class ScriptedVenue(VenueAdapter):
    """A venue whose answers are scripted per call, over a book of its own."""

    def __init__(self, name: str = "sim-a", *, clock: Callable[[], datetime] | None = None):
        self.name = name
        self.clock = clock or (lambda: datetime.now(UTC))
        self.requests: list[Call] = []
        self.book: dict[str, BookEntry] = {}  # by client order id
        self._scripts: dict[str, deque[Answer]] = {m: deque() for m in _DEFAULTS}
        self._ids = 0

    # scripting
    def on_submit(self, *answers: Answer) -> ScriptedVenue:
        self._scripts["submit_order"].extend(answers)
        return self

    def on_cancel(self, *answers: Answer) -> ScriptedVenue:
        self._scripts["cancel_order"].extend(answers)
        return self

    def on_amend(self, *answers: Answer) -> ScriptedVenue:
        self._scripts["amend_order"].extend(answers)
        return self

    def on_fetch(self, *answers: Answer) -> ScriptedVenue:
        self._scripts["fetch_order"].extend(answers)
        return self

    # what reached the venue
    def methods(self) -> list[str]:
        return [c.method for c in self.requests]

    def calls(self, method: str) -> list[Call]:
        return [c for c in self.requests if c.method == method]

    # the venue's own book
    def next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def take(self, call: Call) -> BookEntry:
        """Put a new order on the book (a client order id it has is refused)."""
        request = call.request
        assert request is not None
        if request.client_order_id in self.book:
            raise VenueRejected("duplicate client order id")
        entry = BookEntry(
            venue_order_id=self.next_id("V"),
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            quantity=request.quantity,
            price=request.price,
            time_in_force=request.time_in_force,
        )
        self.book[entry.client_order_id] = entry
        return entry

    def place(
        self,
        client_order_id: str,
        *,
        side: str = "buy",
        quantity: str = "0.5",
        price: str = "59000",
        symbol: str = "BTC/USDT",
    ) -> BookEntry:
        """An order placed at the venue behind the OMS's back (no request recorded)."""
        request = OrderRequest(client_order_id, symbol, side, "limit", D(quantity), D(price))
        return self.take(Call("place", client_order_id, request))

    def trade(self, client_order_id: str, quantity: str, price: str) -> VenueTrade:
        """The venue executes part of a booked order (no report is sent to the OMS)."""
        entry = self.book[client_order_id]
        trade = VenueTrade(
            trade_id=self.next_id("T"),
            venue_order_id=entry.venue_order_id,
            symbol=entry.symbol,
            side=entry.side,
            quantity=D(quantity),
            price=D(price),
            timestamp=self.clock(),
            client_order_id=client_order_id,
        )
        entry.trades.append(trade)
        full = entry.filled >= entry.quantity
        entry.status = VenueOrderStatus.FILLED if full else VenueOrderStatus.PARTIALLY_FILLED
        return trade

    def settle_ioc(self, entry: BookEntry) -> BookEntry:
        if entry.time_in_force in ("IOC", "FOK") and entry.status.value in _OPEN:
            entry.status = VenueOrderStatus.EXPIRED
        return entry

    def entry(self, call: Call) -> BookEntry:
        entry = self.book.get(call.client_order_id or "")
        if entry is None:
            raise VenueOrderNotFound(f"unknown order {call.client_order_id}")
        return entry

    def _answer(self, call: Call) -> VenueOrder:
        self.requests.append(call)
        script = self._scripts[call.method]
        answer = script.popleft() if script else _DEFAULTS[call.method]
        return answer(self, call)

    # VenueAdapter
    def capabilities(self) -> Capabilities:
        return Capabilities(markets=("BTC/USDT", "ETH/USDT"))

    def submit_order(self, request: OrderRequest) -> VenueOrder:
        return self._answer(Call("submit_order", request.client_order_id, request=request))

    def cancel_order(
        self, *, symbol: str, client_order_id: str, venue_order_id: str | None = None
    ) -> VenueOrder:
        return self._answer(Call("cancel_order", client_order_id))

    def amend_order(
        self,
        *,
        symbol: str,
        client_order_id: str,
        venue_order_id: str | None,
        new_client_order_id: str,
        side: str,
        quantity: Decimal,
        price: Decimal | None,
    ) -> VenueOrder:
        call = Call("amend_order", client_order_id, None, new_client_order_id, quantity, price)
        return self._answer(call)

    def fetch_order(self, *, symbol: str, client_order_id: str) -> VenueOrder:
        return self._answer(Call("fetch_order", client_order_id))

    def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        self.requests.append(Call("fetch_open_orders"))
        return [
            e.snapshot()
            for e in self.book.values()
            if e.status.value in _OPEN and symbol in (None, e.symbol)
        ]

    def fetch_trades(
        self, *, symbol: str, since_ms: int | None = None, limit: int = 500
    ) -> list[VenueTrade]:
        self.requests.append(Call("fetch_trades"))
        trades = [t for e in self.book.values() if e.symbol == symbol for t in e.trades]
        if since_ms is not None:
            trades = [t for t in trades if t.timestamp is None or _ms(t.timestamp) >= since_ms]
        return sorted(trades, key=lambda t: t.timestamp or datetime.min.replace(tzinfo=UTC))[:limit]

    def fetch_order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        return OrderBook(symbol=symbol, bids=(), asks=())

    def fetch_balances(self) -> dict[str, Balance]:
        return {}


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


# --- the harness -------------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """Venue work queued for a worker: a task name, its order, how often it was tried."""

    task: str
    order_id: int
    retries: int = 0


@dataclass(frozen=True)
class Ran:
    work: Work
    outcome: Outcome


# task name -> (step, in_doubt, then), as orders/tasks.py declares them
_TASKS: dict[str, tuple[Callable[[int], Outcome], str, str]] = {
    "oms.orders.submit": (venue_calls.submit, "resolve", "resend"),
    "oms.orders.resend": (lambda i: venue_calls.sync_from_venue(i, not_found="resend"), "", ""),
    "oms.urgent.cancel": (venue_calls.cancel, "", ""),
    "oms.orders.amend": (venue_calls.amend, "resolve", ""),
    "oms.recon.resolve_order": (
        lambda i: venue_calls.sync_from_venue(i, not_found="keep"),
        "",
        "",
    ),
}


class Harness:
    def __init__(self, venue: ScriptedVenue, clock: TestClock) -> None:
        self.venue = venue
        self.clock = clock
        self.dispatched: list[tuple[str, tuple[Any, ...]]] = []  # all engine.dispatch saw
        self.queued: deque[Work] = deque()
        self.ran: list[Ran] = []

    def dispatch(self, task: str, args: tuple[Any, ...]) -> None:
        self.dispatched.append((task, args))
        self.queued.append(Work(task, args[0]))

    def submit(self, **fields: Any) -> Order:
        """``SubmitOrder`` through ``engine.execute``: a 0.01 BTC/USDT limit buy at the
        reference price on the fake venue unless ``fields`` say otherwise."""
        command: dict[str, Any] = {
            "account": "DEMO",
            "symbol": "BTC/USDT",
            "side": "buy",
            "type": "limit",
            "quantity": D("0.01"),
            "price": D(REFERENCE_PRICE),
            "venue": self.venue.name,
        }
        command.update(fields)
        return engine.execute(SubmitOrder(**command)).order

    def run_queued(self) -> list[Outcome]:
        """Run the work queued now (not what it queues in turn), in order; what follows
        each outcome (tasks.py) is queued for the next call."""
        outcomes = []
        for _ in range(len(self.queued)):
            work = self.queued.popleft()
            outcome = _TASKS[work.task][0](work.order_id)
            self.ran.append(Ran(work, outcome))
            self._follow_up(work, outcome)
            outcomes.append(outcome)
        return outcomes

    def _follow_up(self, work: Work, outcome: Outcome) -> None:
        """What the Celery task does next (``tasks.order_task``, ``tasks.resolve_order``)."""
        if work.task == "oms.recon.resolve_order" and outcome.not_found:
            if work.retries >= tasks.RESEND_AFTER_LOOKS:
                self.queued.append(Work("oms.orders.resend", work.order_id))
                return
            outcome = Outcome(done=False, retry_after=1.0)
        if outcome.done:
            return
        _, in_doubt_, then = _TASKS[work.task]
        if outcome.retry_after is None and in_doubt_ == "resolve":
            self.queued.append(Work("oms.recon.resolve_order", work.order_id))
        elif then == "resend":
            self.queued.append(Work("oms.orders.resend", work.order_id))
        else:
            self.queued.append(Work(work.task, work.order_id, work.retries + 1))

    def tasks_queued(self) -> list[str]:
        return [w.task for w in self.queued]

    @staticmethod
    def events(order: Order) -> list[str]:
        return list(order.events.order_by("sequence").values_list("kind", flat=True))

    def venue_id(self) -> int:
        from venues.models import Venue

        return Venue.objects.get(name=self.venue.name).pk

    @staticmethod
    def reload(order: Order) -> Order:
        return Order.objects.get(pk=order.pk)


def _fresh_market(symbol: str = "BTC/USDT", venue: str = "sim-a") -> list[str]:
    """A fresh reference price (the book mid and mark risk reads), and no leftovers of
    other tests: stale books, reconciliation cursors, an open breaker."""
    from omsweb.redis_client import client

    r = client()
    stale = [
        *r.scan_iter("oms:book:*"),
        *r.scan_iter("oms:mark:*"),
        *r.scan_iter("oms:recon:*"),
        f"oms:breaker:{venue}",
    ]
    r.delete(*stale)
    from tests.market import publish_book

    return publish_book(r, venue, symbol, REFERENCE_PRICE)


def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The engine wired to a ``ScriptedVenue`` named sim-a and a ``TestClock``, on the
    demo reference data with its default risk limits. The body of the ``harness``
    fixture (``yield from installed(monkeypatch)``, with ``transactional_db``)."""
    from omsweb.demo import ensure_reference_data
    from omsweb.redis_client import client

    ensure_reference_data()
    keys = _fresh_market()
    clock = TestClock()
    h = Harness(ScriptedVenue("sim-a", clock=clock), clock)
    monkeypatch.setattr(venue_calls, "adapter_for", lambda venue: h.venue)
    monkeypatch.setattr(engine, "dispatch", h.dispatch)
    monkeypatch.setattr(engine, "clock", clock)
    yield h
    client().delete(*keys)
