"""Recording what the handler receives, in the format of ``../shared/data/binance-spot/``.

One gzip file per venue and symbol, ``<dir>/<venue>/<symbol>_<UTC start>.gz``, one
message a line: ``<local receive time, ns since epoch> <JSON>``. Stream messages are
written in Binance's combined-stream envelope ``{"stream": "btcusdt@depth@100ms",
"data": {...}}``; every depth snapshot the handler fetches (at the start, and after each
resync) is written bare, as ``GET /api/v3/depth`` answered it. So the backtester, the
book builder's tests and ``oms simex --replay`` read a recording of the OMS's own feed
exactly as they read Binance's.

It hooks the ccxt.pro client of a Binance-compatible venue: each raw WebSocket message
before ccxt handles it, and each raw depth answer. Other exchanges' messages have other
shapes; they are not recorded (a warning says so once).
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("oms.marketdata")

FLUSH_S = 1.0


class Recorder:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, IO[str]] = {}
        self.started = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        self.flushed = time.monotonic()
        self.lines = 0

    def _file(self, symbol_id: str) -> IO[str]:
        fh = self.files.get(symbol_id)
        if fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{symbol_id.lower()}_{self.started}.gz"
            fh = self.files[symbol_id] = gzip.open(path, "at", encoding="utf-8")
            log.info("recording %s to %s", symbol_id, path)
        return fh

    def write(self, symbol_id: str, message: dict[str, Any], received_ns: int) -> None:
        fh = self._file(symbol_id)
        fh.write(f"{received_ns} {json.dumps(message, separators=(',', ':'))}\n")
        self.lines += 1
        if time.monotonic() - self.flushed > FLUSH_S:
            self.flush()

    def flush(self) -> None:
        for fh in self.files.values():
            fh.flush()
        self.flushed = time.monotonic()

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        self.files.clear()


def stream_name(message: dict[str, Any]) -> tuple[str, str] | None:
    """(symbol id, Binance stream name) of a raw stream payload; None if not market data."""
    symbol = message.get("s")
    if not isinstance(symbol, str):
        return None
    kind = message.get("e")
    if kind == "depthUpdate":
        return symbol, f"{symbol.lower()}@depth@100ms"
    if kind == "trade":
        return symbol, f"{symbol.lower()}@trade"
    if kind is None and {"u", "b", "a"} <= message.keys():
        return symbol, f"{symbol.lower()}@bookTicker"
    return None


def record_exchange(exchange: Any, directory: Path) -> Any:
    """Hook ``exchange`` (ccxt.pro, Binance-compatible) so that what it receives is
    recorded under ``directory``; ``exchange.md_recorder`` is the :class:`Recorder`."""
    recorder = Recorder(directory)
    handle_message = exchange.handle_message
    public_get_depth = exchange.publicGetDepth
    warned: list[bool] = []

    def recording_handle_message(client: Any, message: Any) -> Any:
        received = time.time_ns()
        if isinstance(message, dict):
            data = message.get("data", message)
            named = stream_name(data) if isinstance(data, dict) else None
            if named is not None:
                recorder.write(named[0], {"stream": named[1], "data": data}, received)
            elif "result" not in message and not warned:
                warned.append(True)
                log.warning("%s: messages of this shape are not recorded", exchange.id)
        return handle_message(client, message)

    async def recording_public_get_depth(params: Any = None) -> Any:
        response = await public_get_depth(params or {})
        symbol = (params or {}).get("symbol")
        if isinstance(symbol, str) and isinstance(response, dict):
            recorder.write(symbol, response, time.time_ns())
        return response

    exchange.handle_message = recording_handle_message
    exchange.publicGetDepth = recording_public_get_depth
    exchange.md_recorder = recorder
    return exchange
