"""``oms venuestream``: follow each enabled venue's trades and order states.

One thread per venue polls (the simulated exchange and ccxt's REST clients have no
user-data stream here) with an interval that tightens while orders are working:

* **trades** since a cursor kept in Redis, per symbol with working orders; each trade
  of ours becomes a ``fill`` report on the ``oms.reports`` queue (the service dedupes on
  ``(venue, trade id)``, so overlap between polls is harmless);
* **open orders**: an order working in the OMS that the venue no longer lists is
  handed to ``oms.recon.resolve_order``, which asks the venue for its final state;
* **marks**: the consolidated mid that ``oms marketdata`` publishes (``oms:mark:<symbol>``,
  the one source of books) onto positions for unrealized P&L.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from venues.base import VenueAdapter, VenueError, VenueRateLimited

log = logging.getLogger("oms.venuestream")

FAST_POLL_S = 0.5  # while orders are working
SLOW_POLL_S = 3.0  # idle
MARK_POLL_S = 1.0
OPEN_ORDERS_POLL_S = 2.0
TRADE_OVERLAP_MS = 5_000  # re-read a little before the cursor: late-published trades
GRACE = timedelta(seconds=3)  # an order this young may not be listed yet


@dataclass
class Follower:
    venue_id: int
    name: str
    adapter: VenueAdapter
    redis: Any
    seen_trades: set[tuple[str, str]] = field(default_factory=set)  # (symbol, trade id)
    next_mark: float = 0.0
    next_open: float = 0.0
    backoff_until: float = 0.0

    def _cursor_key(self, symbol: str) -> str:
        return f"oms:stream:{self.name}:{symbol}:since"

    def step(self) -> float:
        """One polling round; returns the seconds to wait before the next."""
        from omsweb.celery import app
        from orders.domain import lifecycle as lc
        from orders.engine import find_order
        from orders.models import Order

        now = time.monotonic()
        if now < self.backoff_until:
            return self.backoff_until - now
        working = list(
            Order.objects.filter(
                venue_id=self.venue_id,
                status__in=lc.values(lc.WORKING_STATUSES),
            ).values_list("pk", "instrument__symbol", "venue_order_id", "updated_at")
        )
        symbols = sorted({row[1] for row in working})
        try:
            for symbol in symbols:
                self._poll_trades(symbol, app, find_order)
            if working and now >= self.next_open:
                self.next_open = now + OPEN_ORDERS_POLL_S
                self._poll_open_orders(symbols, working, app)
            if now >= self.next_mark:
                self.next_mark = now + MARK_POLL_S
                self._update_marks()
        except VenueRateLimited as exc:
            self.backoff_until = time.monotonic() + (exc.retry_after or 5.0)
            log.warning("%s rate limited; pausing %.1fs", self.name, exc.retry_after or 5.0)
        except VenueError as exc:
            log.warning("%s poll failed: %s", self.name, exc.reason)
            return SLOW_POLL_S
        return FAST_POLL_S if working else SLOW_POLL_S

    def _poll_trades(self, symbol: str, app: Any, find_order: Any) -> None:
        from orders.reports import fill_report

        key = self._cursor_key(symbol)
        raw = self.redis.get(key)
        since = int(raw) - TRADE_OVERLAP_MS if raw else int((time.time() - 3600) * 1000)
        trades = self.adapter.fetch_trades(symbol=symbol, since_ms=since)
        newest = int(raw) if raw else since
        for trade in trades:
            ts = int(trade.timestamp.timestamp() * 1000) if trade.timestamp else newest
            newest = max(newest, ts)
            if (symbol, trade.trade_id) in self.seen_trades:
                continue
            order = find_order(
                venue_id=self.venue_id, symbol=symbol, venue_order_id=trade.venue_order_id
            )
            if order is None:
                continue  # not ours (or placed behind our back: reconciliation surfaces it)
            report = fill_report(trade, source="stream")
            app.send_task("oms.reports.apply", args=(order.pk, report.to_payload()))
            self.seen_trades.add((symbol, trade.trade_id))
        if len(self.seen_trades) > 50_000:
            self.seen_trades.clear()  # the service dedupes anyway
        self.redis.set(key, newest)

    def _poll_open_orders(self, symbols: list[str], working: list[tuple], app: Any) -> None:
        open_ids: set[str] = set()
        for symbol in symbols:
            open_ids |= {o.venue_order_id for o in self.adapter.fetch_open_orders(symbol)}
        cutoff = timezone.now() - GRACE
        for pk, _symbol, venue_order_id, updated_at in working:
            if venue_order_id and venue_order_id not in open_ids and updated_at < cutoff:
                app.send_task("oms.recon.resolve_order", args=(pk,))

    def _update_marks(self) -> None:
        """Positions' marks from the consolidated mid that ``oms marketdata`` publishes
        (the one source of books); nothing when no venue is LIVE."""
        from marketdata.store import mark_key
        from orders import writer
        from orders.models import Instrument

        symbols = list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))
        for symbol, raw in zip(
            symbols, self.redis.mget([mark_key(s) for s in symbols]), strict=True
        ):
            if raw is not None:
                writer.set_marks(symbol, Decimal(raw.decode()))


def _follow(venue: Any, stop: threading.Event) -> None:
    from omsweb.redis_client import client
    from venues.guard import guarded_adapter

    follower = Follower(
        venue_id=venue.pk, name=venue.name, adapter=guarded_adapter(venue), redis=client()
    )
    log.info("following %s", venue.name)
    while not stop.is_set():
        try:
            delay = follower.step()
        except Exception:  # keep following; a bad round must not stop the stream
            log.exception("%s: poll round failed", venue.name)
            delay = SLOW_POLL_S
        finally:
            close_old_connections()
        stop.wait(delay)


def main() -> None:
    from venues.models import Venue

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads: dict[str, threading.Thread] = {}
    while not stop.is_set():
        for venue in Venue.objects.filter(enabled=True):
            thread = threads.get(venue.name)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=_follow, args=(venue, stop), name=f"follow-{venue.name}", daemon=True
                )
                thread.start()
                threads[venue.name] = thread
        close_old_connections()
        stop.wait(10.0)
    for thread in threads.values():
        thread.join(timeout=5)
