"""``/api/v1/marketdata/``: the market data ``oms marketdata`` publishes, read from Redis.

* ``GET /api/v1/marketdata/``: per enabled instrument, the consolidated best bid and ask
  (with their venues), mid and crossed flag, and per venue its state, reason, best bid
  and ask, age in ms, sequence, exchange time and last trade;
* ``GET /api/v1/marketdata/{symbol}/book/?depth=N``: the consolidated book of one
  symbol (``BTC/USDT``, ``BTC-USDT`` or ``BTCUSDT``), level by level with venue, price,
  fee-adjusted price, quantity and age; ``depth`` 1 to 100 a side, default 10.
"""

from __future__ import annotations

import time
from typing import Any

from rest_framework import permissions
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.consolidated import Consolidated, Level, VenueBook, consolidate
from marketdata.store import read_books

MAX_DEPTH = 100


def _symbols() -> list[str]:
    from orders.models import Instrument

    return list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))


def _resolve(raw: str, symbols: list[str]) -> str:
    wanted = raw.upper().replace("-", "/")
    for symbol in symbols:
        if wanted in (symbol, symbol.replace("/", "")):
            return symbol
    raise NotFound(f"unknown symbol {raw!r}; one of {', '.join(symbols)}")


def _best(level: Level | None) -> dict[str, Any] | None:
    return None if level is None else level.to_json()


def _venue_row(book: VenueBook, now: float) -> dict[str, Any]:
    return {
        "venue": book.venue,
        "state": str(book.effective_state(now)),
        "reason": book.reason if book.effective_state(now) == book.state else "no recent update",
        "bid": None if book.best_bid is None else str(book.best_bid),
        "ask": None if book.best_ask is None else str(book.best_ask),
        "age_ms": round(book.age_s(now) * 1000),
        "sequence": book.seq,
        "exchange_ts_ms": book.exchange_ts_ms,
        "taker_fee": str(book.taker_fee),
        "last_trade": book.last_trade,
        "source": book.source,
    }


def _summary(merged: Consolidated) -> dict[str, Any]:
    return {
        "bid": _best(merged.best_bid),
        "ask": _best(merged.best_ask),
        "mid": None if merged.mid is None else str(merged.mid),
        "crossed": merged.crossed,
        "live_venues": merged.venues,
    }


class MarketDataView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        from omsweb.redis_client import client

        symbols = _symbols()
        books = read_books(client(), symbols)
        now = time.time()
        out = []
        for symbol in symbols:
            mine = sorted((b for b in books if b.symbol == symbol), key=lambda b: b.venue)
            merged = consolidate(symbol, mine, now, depth=1)
            out.append(
                {
                    "symbol": symbol,
                    "consolidated": _summary(merged),
                    "venues": [_venue_row(b, now) for b in mine],
                }
            )
        return Response({"symbols": out})


class ConsolidatedBookView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request, symbol: str) -> Response:
        from omsweb.redis_client import client

        symbol = _resolve(symbol, _symbols())
        raw = request.query_params.get("depth", "10")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_DEPTH:
            raise ValidationError({"depth": [f"a whole number from 1 to {MAX_DEPTH}, not {raw!r}"]})
        merged = consolidate(symbol, read_books(client(), [symbol]), time.time(), int(raw))
        return Response(
            {
                "symbol": symbol,
                **_summary(merged),
                "bids": [lv.to_json() for lv in merged.bids],
                "asks": [lv.to_json() for lv in merged.asks],
            }
        )
