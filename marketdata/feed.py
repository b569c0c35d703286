"""One venue's market data: books and trades per symbol, their state, published to Redis.

Per symbol, the book comes from the venue's stream where it has one (ccxt.pro
``watch_order_book``: it buffers diffs, fetches the snapshot and follows Binance's
``U``/``u`` rules, raising on a gap) and from REST polling (``fetch_order_book``) when the
venue has no stream or the stream keeps failing. Either way each update is applied to a
:class:`marketdata.book.L2Book` as a sequenced snapshot, so an older update is ignored and
a crossed book is never published as LIVE.

States (``marketdata.book.MdState``):

* ``LIVE``: in sync and heard from within the venue's interval;
* ``STALE``: in sync but silent for longer than the interval. A quiet book is not stale:
  when nothing arrives for the interval, the venue's REST depth is asked for its update
  id; the same id as ours confirms the book (it stays LIVE), a newer one that our stream
  does not deliver, or no answer, makes it STALE. A stream silent for
  ``STALE_BEFORE_POLLING`` intervals while the venue moves is given up for REST polling
  (LIVE again from the polled snapshots; the stream is retried later);
* ``RESYNCING``: a gap or a crossed book; waiting for a fresh snapshot (ccxt.pro
  re-subscribes and refetches on the next watch);
* ``DOWN``: no connection. Retries with backoff; when the venue answers again the book
  goes RESYNCING, then LIVE with the first fresh snapshot.

Every change of state calls ``on_state`` (the handler turns it into an event). No
Django here: ``marketdata.handler`` wires it to the database and the event listeners,
the benchmark runs it bare.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ccxt

from marketdata.book import L2Book, MdState, Outcome
from marketdata.consolidated import DEFAULT_INTERVAL_S, VenueBook
from marketdata.store import publish, publish_mark

log = logging.getLogger("oms.marketdata")

POLL_INTERVAL_S = 1.0  # REST polling, when a venue has no stream
STREAM_FAILURES_BEFORE_POLLING = 3
STREAM_RETRY_AFTER_S = 30.0  # while polling, try the stream again this often
STALE_BEFORE_POLLING = 3  # intervals of a silent stream (the venue moving) before polling
REFRESH_S = 1.0  # republish a LIVE book at least this often (readers judge by its ts)
BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 5.0)


@dataclass
class SymbolFeed:
    venue: str
    symbol: str
    book: L2Book
    state: MdState = MdState.DOWN
    reason: str = "starting"
    exchange_ts_ms: int | None = None
    received_ts: float | None = None
    heard: float = 0.0  # monotonic: last update applied or confirmed
    checked: float = 0.0  # monotonic: last time a quiet book was checked against REST
    published: float = 0.0  # monotonic: last publish
    last_trade: dict[str, Any] | None = None
    source: str = ""
    failures: int = 0  # stream (or poll) failures in a row while the venue answers REST
    down_probes: int = 0
    polling_since: float | None = None


@dataclass
class VenueSpec:
    name: str
    exchange: Any  # a ccxt.pro exchange
    symbols: list[str]
    interval_s: float = DEFAULT_INTERVAL_S
    depth: int = 20
    taker_fee: Decimal = Decimal(0)


StateCallback = Callable[[SymbolFeed, MdState], None]


@dataclass
class VenueFeed:
    spec: VenueSpec
    redis: Any
    on_state: StateCallback = lambda feed, previous: None
    on_publish: Callable[[VenueBook], None] | None = None  # the benchmark's probe
    feeds: dict[str, SymbolFeed] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for symbol in self.spec.symbols:
            self.feeds[symbol] = SymbolFeed(self.spec.name, symbol, L2Book(symbol))
        self._book_tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()

    def _poll_instead(self, feed: SymbolFeed, why: str) -> None:
        """The stream is connected but does not deliver: poll REST for a while (the
        stream is tried again after ``STREAM_RETRY_AFTER_S``)."""
        log.warning("%s %s: %s; polling REST", feed.venue, feed.symbol, why)
        feed.polling_since = time.monotonic()
        task = self._book_tasks.get(feed.symbol)
        if task is not None:
            task.cancel()  # it waits on the silent stream
        self._book_tasks[feed.symbol] = asyncio.create_task(
            self._book_loop(feed.symbol, self._stop)
        )

    # ------------------------------------------------------------------ running

    async def run(self, stop: asyncio.Event) -> None:
        ex = self.spec.exchange
        self._stop = stop
        tasks = []
        for symbol in self.spec.symbols:
            self._book_tasks[symbol] = asyncio.create_task(self._book_loop(symbol, stop))
            tasks.append(asyncio.create_task(self._trade_loop(symbol, stop)))
        tasks.append(asyncio.create_task(self._watchdog(stop)))
        try:
            await stop.wait()
        finally:
            tasks += self._book_tasks.values()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=2.0)
            with contextlib.suppress(Exception):  # a close handshake must not hold us up
                await asyncio.wait_for(ex.close(), 2.0)
            recorder = getattr(ex, "md_recorder", None)
            if recorder is not None:
                recorder.close()

    def _streams(self) -> bool:
        return bool(self.spec.exchange.has.get("watchOrderBook"))

    async def _book_loop(self, symbol: str, stop: asyncio.Event) -> None:
        feed = self.feeds[symbol]
        ex = self.spec.exchange
        while not stop.is_set():
            now = time.monotonic()
            if feed.polling_since is not None and now - feed.polling_since > STREAM_RETRY_AFTER_S:
                feed.polling_since, feed.failures = None, 0
            use_stream = self._streams() and feed.polling_since is None
            if feed.state == MdState.DOWN and not await self._probe(feed, stop):
                continue
            try:
                if use_stream:
                    ob = await ex.watch_order_book(symbol)
                    self._on_book(feed, ob, "stream")
                else:
                    ob = await ex.fetch_order_book(symbol, max(self.spec.depth, 5))
                    self._on_book(feed, ob, "poll")
                    await asyncio.sleep(POLL_INTERVAL_S)
                feed.failures = 0
            except asyncio.CancelledError:
                raise
            except (ccxt.ChecksumError, ccxt.InvalidNonce) as exc:
                # ccxt.pro saw a diff that does not follow: it drops its book and
                # refetches the snapshot on the next watch
                feed.book.resync(f"gap in the venue's diffs: {exc}")
                self._set_state(feed, MdState.RESYNCING, feed.book.reason)
            except Exception as exc:  # a connection lost, refused, or an error answer
                feed.failures += 1
                feed.book.resync("connection lost")
                self._set_state(feed, MdState.DOWN, _describe(exc))
                if use_stream and feed.failures >= STREAM_FAILURES_BEFORE_POLLING:
                    feed.polling_since = time.monotonic()
                    log.warning("%s %s: stream failing, polling REST", feed.venue, symbol)
                delay = BACKOFF_S[min(feed.failures, len(BACKOFF_S)) - 1]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _probe(self, feed: SymbolFeed, stop: asyncio.Event) -> bool:
        """After DOWN: is the venue there again? Then the book is RESYNCING until the
        first fresh snapshot. If not, wait (backing off) and say so."""
        try:
            await self.spec.exchange.fetch_time()
        except Exception as exc:
            feed.down_probes += 1
            reason = _describe(exc)
            if reason != feed.reason:  # a new way of failing: say so, once
                log.info("%s %s: still DOWN: %s", feed.venue, feed.symbol, reason)
            self._set_state(feed, MdState.DOWN, reason, publish=False)
            delay = BACKOFF_S[min(feed.down_probes, len(BACKOFF_S)) - 1]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            return False
        feed.down_probes = 0
        self._set_state(feed, MdState.RESYNCING, "venue reachable again; waiting for a snapshot")
        return True

    async def _trade_loop(self, symbol: str, stop: asyncio.Event) -> None:
        feed = self.feeds[symbol]
        ex = self.spec.exchange
        if not ex.has.get("watchTrades"):
            return  # trades are not needed for the book; polling them would cost weight
        while not stop.is_set():
            try:
                trades = await ex.watch_trades(symbol)
            except asyncio.CancelledError:
                raise
            except Exception:  # the book loop reports the connection's state
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            if trades:
                t = trades[-1]
                feed.last_trade = {
                    "id": t.get("id"),
                    "price": _dec_text(t.get("price")),
                    "quantity": _dec_text(t.get("amount")),
                    "side": t.get("side"),
                    "ts_ms": t.get("timestamp"),
                }

    async def _watchdog(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
            now = time.monotonic()
            for feed in self.feeds.values():
                try:
                    quiet = now - max(feed.heard, feed.checked) > self.spec.interval_s
                    if feed.state in (MdState.LIVE, MdState.STALE) and quiet:
                        feed.checked = now
                        await self._confirm_quiet_book(feed)
                    elif feed.state != MdState.DOWN and now - feed.published > REFRESH_S:
                        self._publish(feed)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s %s: watchdog failed", feed.venue, feed.symbol)

    async def _confirm_quiet_book(self, feed: SymbolFeed) -> None:
        silent = time.monotonic() - feed.heard
        try:
            ob = await self.spec.exchange.fetch_order_book(feed.symbol, 5)
        except Exception as exc:
            self._set_state(
                feed, MdState.STALE, f"no update for {silent:.1f} s; depth: {_describe(exc)}"
            )
            return
        venue_seq, ours = ob.get("nonce"), feed.book.last_update_id
        if venue_seq is not None and ours is not None and venue_seq > ours:
            await asyncio.sleep(0.3)  # a diff may be on its way
            ours = feed.book.last_update_id
        if venue_seq is None or ours is None or venue_seq <= ours:
            if feed.state in (MdState.LIVE, MdState.STALE):  # not resynced meanwhile
                feed.heard = time.monotonic()
                self._set_state(feed, MdState.LIVE, "")
            return
        if feed.state == MdState.STALE and silent > STALE_BEFORE_POLLING * self.spec.interval_s:
            self._poll_instead(feed, f"stream silent for {silent:.1f} s while the venue moves")
            return
        self._set_state(
            feed,
            MdState.STALE,
            f"no update for {silent:.1f} s; the venue is at update {venue_seq}, the book at {ours}",
        )

    # ------------------------------------------------------------------ updates

    def _on_book(self, feed: SymbolFeed, ob: Any, source: str) -> None:
        depth = self.spec.depth
        bids = [(_float_text(p), _float_text(q)) for p, q, *_ in ob["bids"][:depth]]
        asks = [(_float_text(p), _float_text(q)) for p, q, *_ in ob["asks"][:depth]]
        nonce = ob.get("nonce")
        outcome = feed.book.apply_snapshot(bids, asks, nonce)
        if outcome == Outcome.IGNORED_OLD:
            return
        feed.received_ts = time.time()
        feed.exchange_ts_ms = ob.get("timestamp")
        feed.source = source
        if outcome == Outcome.APPLIED:
            feed.heard = time.monotonic()
            self._set_state(feed, MdState.LIVE, "", publish=False)
        else:
            self._set_state(feed, MdState.RESYNCING, feed.book.reason, publish=False)
        self._publish(feed)

    def _set_state(
        self, feed: SymbolFeed, state: MdState, reason: str, *, publish: bool = True
    ) -> None:
        previous = feed.state
        feed.state, feed.reason = state, reason
        if state != previous:
            log.info(
                "%s %s market data %s -> %s%s",
                feed.venue, feed.symbol, previous, state, f": {reason}" if reason else "",
            )  # fmt: skip
            self.on_state(feed, previous)
        if publish:
            self._publish(feed)

    def _publish(self, feed: SymbolFeed) -> None:
        live = feed.state in (MdState.LIVE, MdState.STALE)
        bids, asks = feed.book.top(self.spec.depth) if live else ([], [])
        book = VenueBook(
            venue=feed.venue,
            symbol=feed.symbol,
            state=feed.state,
            reason=feed.reason,
            bids=bids,
            asks=asks,
            seq=feed.book.last_update_id,
            exchange_ts_ms=feed.exchange_ts_ms,
            received_ts=feed.received_ts,
            ts=time.time(),
            interval_s=self.spec.interval_s,
            taker_fee=self.spec.taker_fee,
            last_trade=feed.last_trade,
            source=feed.source,
        )
        try:
            publish(self.redis, book)
            if self.on_publish is not None:
                self.on_publish(book)
            publish_mark(self.redis, feed.symbol, book.ts)
        except Exception:  # Redis away: readers see the key age and judge it stale
            log.warning("%s %s: cannot publish to Redis", feed.venue, feed.symbol, exc_info=True)
            return
        feed.published = time.monotonic()


def _float_text(value: Any) -> str:
    """ccxt.pro keeps levels as floats; their shortest repr is the venue's decimal text."""
    return repr(float(value))


def _dec_text(value: Any) -> str | None:
    return None if value is None else _float_text(value)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
