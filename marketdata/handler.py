"""``oms marketdata``: books of every enabled venue and OMS instrument into Redis.

One asyncio loop; per venue one ccxt.pro client (``marketdata.feed.VenueFeed``: streams
where the venue has them, REST polling otherwise) and its books published through
``marketdata.store``. This module is the Django side: it reads the venue rows and
instruments, records each venue's taker fee on its row, and turns every state change
into a :class:`marketdata.events.MarketDataStateChanged` for the listeners of
``omsweb.events`` (the blotter's push; risk and routing read the states from Redis).

Several handlers can share a deployment, each with ``--venues`` naming its part.
Venue rows are read at start: restart the handler after adding or enabling a venue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketdata.book import MdState
from marketdata.consolidated import DEFAULT_INTERVAL_S
from marketdata.events import MarketDataStateChanged
from marketdata.feed import SymbolFeed, VenueFeed, VenueSpec

log = logging.getLogger("oms.marketdata")

FEE_RETRY_S = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="oms marketdata", description=__doc__.split("\n")[0])
    p.add_argument("--venues", default="", help="comma list of venue names (default: all)")
    p.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_S,
        help="seconds without an update before a book is STALE (default 2)",
    )
    p.add_argument(
        "--venue-interval",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="a venue's own expected interval (repeatable)",
    )
    p.add_argument("--depth", type=int, default=20, help="levels a side published (default 20)")
    p.add_argument(
        "--record", type=Path, default=None, metavar="DIR", help="record what is received"
    )
    args = p.parse_args(argv)
    intervals: dict[str, float] = {}
    for item in args.venue_interval:
        name, sep, value = item.partition("=")
        try:
            intervals[name.strip()] = float(value)
        except ValueError:
            p.error(f"--venue-interval: expected NAME=SECONDS, got {item!r}")
        if not sep or intervals[name.strip()] <= 0:
            p.error(f"--venue-interval: expected NAME=SECONDS > 0, got {item!r}")
    if args.interval <= 0 or args.depth < 1:
        p.error("--interval must be > 0 and --depth >= 1")
    args.intervals = intervals
    return args


def load_specs(args: argparse.Namespace) -> list[VenueSpec]:
    """Enabled venues (those named by ``--venues``) with the enabled instruments."""
    from django.db import close_old_connections

    from orders.models import Instrument
    from venues.ccxt_adapter import build_exchange
    from venues.models import Venue
    from venues.registry import VenueConfigError, config_for

    wanted = {n.strip() for n in args.venues.split(",") if n.strip()}
    symbols = list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))
    specs = []
    for venue in Venue.objects.filter(enabled=True).order_by("name"):
        if wanted and venue.name not in wanted:
            continue
        try:
            config = config_for(venue)
        except VenueConfigError as exc:  # e.g. a fix venue without REST market data
            log.warning("%s: no market data: %s", venue.name, exc)
            continue
        try:
            exchange = build_exchange(config, streaming=True)
        except (AttributeError, ValueError):  # no ccxt.pro class: REST polling
            exchange = build_exchange(config, async_client=True)
        specs.append(
            VenueSpec(
                name=venue.name,
                exchange=exchange,
                symbols=symbols,
                interval_s=args.intervals.get(venue.name, args.interval),
                depth=args.depth,
                taker_fee=venue.taker_fee if venue.taker_fee is not None else Decimal(0),
            )
        )
    close_old_connections()
    return specs


async def keep_fee(spec: VenueSpec, stop: asyncio.Event) -> None:
    """The venue's taker fee: its account's commission rate where the venue tells it
    (Binance's and the simulator's ``GET /api/v3/account``), else ccxt's market data."""
    ex = spec.exchange
    while not stop.is_set():
        try:
            fee = await _fetch_taker_fee(ex, spec.symbols)
        except Exception as exc:
            log.info("%s: taker fee not known yet (%s)", spec.name, exc)
        else:
            if fee is not None:
                spec.taker_fee = fee
                await asyncio.to_thread(_save_fee, spec.name, fee)
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FEE_RETRY_S)


async def _fetch_taker_fee(ex: Any, symbols: list[str]) -> Decimal | None:
    if ex.id in ("binance", "binanceus") and ex.apiKey:
        account = await ex.private_get_account()
        taker = (account.get("commissionRates") or {}).get("taker")
        if taker is not None:
            return Decimal(str(taker))
    markets = await ex.load_markets()
    for symbol in symbols:
        taker = (markets.get(symbol) or {}).get("taker")
        if taker is not None:
            return Decimal(str(taker))
    return None


def _save_fee(venue: str, fee: Decimal) -> None:
    from django.db import close_old_connections

    from venues.models import Venue

    Venue.objects.filter(name=venue).exclude(taker_fee=fee).update(taker_fee=fee)
    close_old_connections()


def _emit(event: MarketDataStateChanged) -> None:
    from django.db import close_old_connections

    from omsweb.events import emit

    try:
        emit(event)
    finally:
        close_old_connections()


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from omsweb.redis_client import client

    specs = await asyncio.to_thread(load_specs, args)
    if not specs:
        log.warning("no enabled venue to follow")
    loop = asyncio.get_running_loop()

    def on_state(feed: SymbolFeed, previous: MdState) -> None:
        event = MarketDataStateChanged(
            feed.venue, feed.symbol, str(feed.state), str(previous), feed.reason
        )
        loop.run_in_executor(None, _emit, event)

    tasks = []
    for spec in specs:
        if args.record is not None:
            from marketdata.recorder import record_exchange

            spec.exchange = record_exchange(spec.exchange, args.record / spec.name)
        feed = VenueFeed(spec, client(), on_state)
        log.info("following %s: %s", spec.name, ", ".join(spec.symbols))
        tasks.append(asyncio.create_task(feed.run(stop)))
        tasks.append(asyncio.create_task(keep_fee(spec, stop)))
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def amain() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(args, stop)

    asyncio.run(amain())
