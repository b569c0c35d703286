"""Simulated exchange: an HTTP server speaking the Binance spot REST API subset ccxt uses.

Run it with ``python -m venues.sim --name sim-a --port 8101`` (see :func:`main`), or
in-process with :func:`build_app` and a :class:`SimConfig`. With ``--replay FILE [--speed X]
[--loop]`` the book follows a recording instead of the synthetic market
(:mod:`venues.sim.replay`); everything else, fault injection included, is the same.

Endpoints (``/api/v3``): ping, time, exchangeInfo, depth, trades, aggTrades, avgPrice, ticker/24hr,
ticker/price, ticker/bookTicker (public); account, order (POST/GET/DELETE), order/test,
openOrders (GET/DELETE), allOrders, myTrades (signed, HMAC-SHA256 over the exact query
string + body, ``X-MBX-APIKEY`` header, ``timestamp``/``recvWindow`` checked). Every
``/api`` answer carries ``X-MBX-USED-WEIGHT-1M`` (weight per IP per minute); new-order
answers carry ``X-MBX-ORDER-COUNT-10S`` and ``X-MBX-ORDER-COUNT-1D``. Errors use
Binance's body ``{"code": -2010, "msg": "..."}`` and HTTP statuses (400; 401 for
-2014/-2015; 429/418 with ``Retry-After``; 5xx only for injected faults).

ccxt client that works against it (ccxt 4.5, verified by tests/venues/sim)::

    import ccxt  # or ccxt.async_support
    ex = ccxt.binance({
        "apiKey": KEY, "secret": SECRET,
        "enableRateLimit": True,
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},  # ["spot"] works too
            "fetchCurrencies": False,  # else load_markets() calls sapi capital/config/getall
            "fetchMargins": False,  # else load_markets() calls sapi margin/allPairs (with keys)
            "adjustForTimeDifference": False,  # True is fine too: it calls GET /api/v3/time
            "warnOnFetchOpenOrdersWithoutSymbol": False,  # else fetch_open_orders() raises
        },
    })
    base = f"http://127.0.0.1:{PORT}/api/v3"
    ex.urls["api"] = {**ex.urls["api"], "public": base, "private": base}
    # optional hardening: point every other key (sapi, fapi*, dapi*, eapi*, papi*, v1,
    # ...) at f"http://127.0.0.1:{PORT}/unsupported/<key>" so a stray non-spot call
    # fails fast with HTTP 404 (ccxt ExchangeNotAvailable) instead of reaching Binance.

With those options ``load_markets()`` makes exactly one request, GET
/api/v3/exchangeInfo. Spot calls only use the ``public`` and ``private`` url keys
(``v1`` is only used for the legacy userDataStream). ``fetch_status()`` uses sapi and is
not supported; ``edit_order()`` (POST order/cancelReplace) is answered with a definite
400 -1020 "This operation is not supported." (ccxt BadRequest): amend by cancel + new.
``fetch_trades()`` (aggTrades) works; ``fetch_ohlcv()`` (klines) is not served. ccxt generates ``newClientOrderId`` ("x-TKT5PX2F" + 22 chars) when none is
given; pass ``params={"clientOrderId": ...}`` (or ``newClientOrderId``) to set it.
``fetch_order(id, symbol, params={"origClientOrderId": cid})`` (``clientOrderId`` is
accepted too) looks an order up by client id; ``cancel_order`` takes the same params.

Exception mapping, verified against ccxt 4.5.x (``tests/venues/sim/test_ccxt.py``).
Note that ccxt's binance only applies its spot-specific code table to api.binance.com
urls, so against this server its generic table applies:

==============================================  =========================================
Venue answer                                    ccxt exception raised
==============================================  =========================================
401 -2015 unknown API key / 401 -2014 no key    AuthenticationError
400 -1022 bad signature                         AuthenticationError
400 -1021 timestamp outside recvWindow          InvalidNonce (a NetworkError)
400 -2010 insufficient balance                  InsufficientFunds
400 -2010 duplicate clientOrderId               InvalidOrder ("Duplicate order sent.")
400 -2010 other rejections (MAX_NUM_ORDERS,     InvalidOrder (OrderImmediatelyFillable for
    LIMIT_MAKER would take, injected reject)        "Order would immediately match and take.")
400 -1013 "Filter failure: PRICE_FILTER"        InvalidOrder
400 -1013 "Filter failure: LOT_SIZE"            InvalidOrder
400 -1013 "Filter failure: NOTIONAL"            BadRequest  (ccxt maps -1013 to BadRequest;
    and injected -1013 rejects                       it is still a definite rejection)
400 -1121 "Invalid symbol."                     BadSymbol
400 -1020 (edit_order / cancelReplace)          BadRequest
400 -1100/-1102/-1104/-1106 malformed request   BadRequest
400 -2013 "Order does not exist." (GET order)   OrderNotFound
400 -2011 "Unknown order sent." (DELETE)        OrderNotFound (also DELETE openOrders when
                                                    nothing is open, as Binance does)
429 -1003 weight / storm, 429 -1015 orders      DDoSProtection (a NetworkError; ccxt's
418 -1003 IP ban                                    binance raises it for any 418/429)
503 "Service Unavailable." (default 5xx fault)  ExchangeNotAvailable (a NetworkError)
5xx with -1001 json body (error_body="json")    OperationFailed (parent of NetworkError)
connection dropped                              NetworkError (sync ccxt: NetworkError itself;
                                                    async ccxt: ExchangeNotAvailable)
answer delayed past the client timeout          RequestTimeout (a NetworkError)
==============================================  =========================================

Admin endpoints (same port, no signature), all JSON:

* ``GET /sim/health`` -> ``{"status": "ok", "name", "time", "uptime_s", "market_paused"}``
* ``GET /sim/faults`` -> the fault config (see :mod:`venues.sim.faults`) plus
  ``rate_limit_storm_remaining_s`` / ``ban_remaining_s``; ``POST /sim/faults`` with a
  partial object (e.g. ``{"latency_ms": 200, "error_after_rate": 0.1}``,
  ``{"rate_limit_storm_s": 5}``, ``{"ban_s": 10}``, ``{"reset": true}``) -> new config.
* ``GET /sim/requests[?client_order_id=&kind=&outcome=&symbol=&since_seq=&limit=]`` ->
  ``{"requests": [entry, ...], "count": n}``; an entry is ``{"seq", "ts", "method",
  "path", "kind": "new"|"cancel"|"cancel_all"|"cancel_replace", "account", "symbol", "side", "type",
  "quantity", "price", "quoteOrderQty", "timeInForce", "clientOrderId", "orderId",
  "http_status", "outcome", "executed_outcome", "order_status", "error_code",
  "error_msg", "fault"}`` (with ``--replay`` also ``"replay_events", "replay_ns"``: where the
  replay stood) for every order request received (POST/DELETE order, DELETE
  openOrders, POST order/cancelReplace), whatever became of it. ``outcome`` is one of accepted, canceled,
  rejected, rate-limited, fault-429, fault-418, fault-reject, fault-5xx-before,
  fault-5xx-after-execute, fault-timeout-before, fault-timeout-after-execute,
  fault-drop-before, fault-drop-after-execute; ``executed_outcome`` is what the
  execution itself gave for the -after-execute faults (accepted/canceled/rejected).
* ``POST /sim/reset`` (optional body ``{"keep_faults": true}``) -> ``{"status": "reset"}``:
  books, orders, balances, market, request log and rate-limit counters back to start.
* ``GET /sim/state[?depth=20]`` -> ``{"name", "time", "market": {"paused", "step_ms",
  "symbols": {"BTCUSDT": {"mid", "symbol": "BTC/USDT"}}, "replay": {"events", "time_ns",
  "loops", "finished", ...} (with --replay)}, "books": {"BTCUSDT":
  {"bids": [[price, qty], ...], "asks": [...], "update_id"}}, "balances": {account:
  {asset: {"free", "locked"}}}, "open_orders": {account: [order, ...]}}``.
* ``POST /sim/market`` ``{"paused": bool, "step_ms": int, "mid": {"BTC/USDT": "61000"},
  "step": true (step once now), "config": {"BTCUSDT": {"volatility": 0.001, ...}}}`` ->
  the ``market`` part of the state.
* ``POST /sim/orders`` ``{"account": "default"|"__house__", "symbol", "side", "type",
  "quantity", "price", "timeInForce", "clientOrderId", "quoteOrderQty"}`` -> the order
  (Binance FULL shape); places an order behind the OMS's back.
* ``POST /sim/balances`` ``{"account": "default", "balances": {"USDT": "100"}}`` sets
  free balances -> ``{"balances": {asset: {"free", "locked"}}}``.
* ``GET /sim/fix`` -> the FIX port's status; ``POST /sim/fix`` ``{"silent_orders": n}``:
  the next n NewOrderSingles execute but their reports are lost (404 without a FIX port).

FIX 4.4 (``--fix-port P``): the same engine and books over FIX, for the ``default``
account (Logon: its API key as Username 553, its secret as Password 554); the QuickFIX
acceptor runs in a child process (``venues/sim/fixserver.py``), the order desk here
(``venues/sim/fixdesk.py`` lists the messages and reports).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import re
import signal
import sys
import tempfile
import time
import traceback
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from backtest.data import DataError
from venues.sim.engine import (
    CANCELED,
    FEE_ACCOUNT,
    GTC,
    LIMIT,
    LIMIT_MAKER,
    MARKET,
    EngineError,
    Instrument,
    MatchingEngine,
    Order,
    format_decimal,
)
from venues.sim.faults import Decision, FaultConfig, FaultInjector
from venues.sim.fixbridge import FixBridge, FixPortConfig
from venues.sim.fixdesk import FixDesk
from venues.sim.market import HOUSE_ACCOUNT, MarketModel, SymbolMarketConfig
from venues.sim.replay import ReplayConfig, ReplayMarket, recorded_symbols, unified_symbol
from venues.sim.streams import StreamHub

log = logging.getLogger("venues.sim")

Clock = Callable[[], int]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


# ====================================================================== configuration


@dataclass
class SymbolConfig:
    instrument: Instrument
    market: SymbolMarketConfig


@dataclass
class AccountConfig:
    name: str
    api_key: str
    api_secret: str
    balances: dict[str, Decimal] = field(
        default_factory=lambda: {
            "USDT": Decimal("1000000"),
            "BTC": Decimal("100"),
            "ETH": Decimal("1000"),
        }
    )


DEFAULT_API_KEY = "sim-api-key"
DEFAULT_API_SECRET = "sim-api-secret"


def default_symbol(
    unified: str, mid: Decimal | None = None, depth_scale: Decimal = Decimal(1)
) -> SymbolConfig:
    """Instrument + market defaults for ``BASE/QUOTE`` (BTC/USDT and ETH/USDT are tuned)."""
    base, _, quote = unified.upper().partition("/")
    if not base or not quote:
        raise ValueError(f"symbol must look like BASE/QUOTE, got {unified!r}")
    sid = base + quote
    if base == "BTC":
        inst = Instrument(
            symbol=sid,
            base=base,
            quote=quote,
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.00001"),
            min_qty=Decimal("0.00001"),
            max_qty=Decimal("9000"),
            market_max_qty=Decimal("100"),
            min_notional=Decimal("5"),
        )
        mkt = SymbolMarketConfig(
            mid=mid or Decimal("60000"),
            level_spacing_ticks=100,
            size_per_level=Decimal("0.5"),
            depth_scale=depth_scale,
        )
    elif base == "ETH":
        inst = Instrument(
            symbol=sid,
            base=base,
            quote=quote,
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.0001"),
            min_qty=Decimal("0.0001"),
            max_qty=Decimal("100000"),
            market_max_qty=Decimal("1000"),
            min_notional=Decimal("5"),
        )
        mkt = SymbolMarketConfig(
            mid=mid or Decimal("3000"),
            level_spacing_ticks=10,
            size_per_level=Decimal("5"),
            depth_scale=depth_scale,
        )
    else:
        inst = Instrument(
            symbol=sid,
            base=base,
            quote=quote,
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            max_qty=Decimal("1000000"),
            market_max_qty=Decimal("100000"),
            min_notional=Decimal("5"),
        )
        mkt = SymbolMarketConfig(
            mid=mid or Decimal("100"),
            level_spacing_ticks=5,
            size_per_level=Decimal("50"),
            depth_scale=depth_scale,
        )
    return SymbolConfig(inst, mkt)


@dataclass
class SimConfig:
    name: str = "sim"
    host: str = "127.0.0.1"
    port: int = 8101
    seed: int = 0
    symbols: list[SymbolConfig] = field(
        default_factory=lambda: [default_symbol("BTC/USDT"), default_symbol("ETH/USDT")]
    )
    accounts: list[AccountConfig] = field(
        default_factory=lambda: [AccountConfig("default", DEFAULT_API_KEY, DEFAULT_API_SECRET)]
    )
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    step_ms: int = 100
    market_paused: bool = False
    weight_limit_1m: int = 6000
    order_limit_10s: int = 100
    order_limit_1d: int = 200_000
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Clock | None = None
    request_log_size: int = 100_000
    shutdown_timeout: float = 1.0
    # the house liquidity follows a recording instead of the synthetic market model
    replay: ReplayConfig | None = None
    fix: FixPortConfig | None = None  # the FIX 4.4 port (venues/sim/fixbridge.py)


# ====================================================================== errors & params


class ApiError(Exception):
    def __init__(
        self, status: int, code: int, msg: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers or {}


def _api_error_from_engine(exc: EngineError) -> ApiError:
    status = 401 if exc.code in (-2014, -2015) else 400
    return ApiError(status, exc.code, exc.msg)


def _mandatory(name: str) -> ApiError:
    return ApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


_DEC_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_INT_RE = re.compile(r"^[0-9]{1,20}$")


class Params:
    """Request parameters (query string + form body) with Binance-style validation."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.values: dict[str, str] = {}
        for k, v in items:
            if k in self.values:
                raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
            self.values[k] = v
        self.read: set[str] = set()

    def get(self, name: str) -> str | None:
        self.read.add(name)
        v = self.values.get(name)
        if v is None or v == "":
            return None
        return v

    def req(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise _mandatory(name)
        return v

    def dec(self, name: str) -> Decimal | None:
        v = self.get(name)
        if v is None:
            return None
        if not _DEC_RE.match(v):
            raise ApiError(
                400,
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
            )
        try:
            return Decimal(v)
        except InvalidOperation as exc:  # pragma: no cover - regex guards it
            raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from exc

    def integer(self, name: str) -> int | None:
        v = self.get(name)
        if v is None:
            return None
        if not _INT_RE.match(v):
            raise ApiError(
                400,
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
            )
        return int(v)

    def limit(self, default: int, maximum: int) -> int:
        n = self.integer("limit")
        if n is None:
            return default
        if n < 1:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'.")
        return min(n, maximum)

    def check_all_read(self, allowed: set[str] | None = None) -> None:
        extra = set(self.values) - self.read - {"signature", "timestamp", "recvWindow"}
        if allowed is not None:
            extra -= allowed
        if extra:
            n_sent = len(self.values)
            raise ApiError(
                400,
                -1104,
                f"Not all sent parameters were read; read '{n_sent - len(extra)}' parameter(s)"
                f" but was sent '{n_sent}'.",
            )


# Parameters Binance accepts on order endpoints that the simulator reads but ignores.
_IGNORED_ORDER_PARAMS = {
    "selfTradePreventionMode",
    "strategyId",
    "strategyType",
    "cancelRestrictions",
    "newClientOrderId",
    "pegPriceType",
    "pegOffsetValue",
    "pegOffsetType",
}


# ====================================================================== formatting


def _d(value: Decimal) -> str:
    return format_decimal(value, 8)


def order_result(order: Order, resp_type: str, transact_time: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": transact_time,
    }
    if resp_type == "ACK":
        return out
    out.update(
        {
            "price": _d(order.price),
            "origQty": _d(order.orig_qty),
            "executedQty": _d(order.executed_qty),
            "origQuoteOrderQty": _d(order.orig_quote_order_qty),
            "cummulativeQuoteQty": _d(order.cummulative_quote_qty),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "workingTime": order.time,
            "selfTradePreventionMode": order.self_trade_prevention_mode,
        }
    )
    if resp_type == "FULL":
        out["fills"] = [
            {
                "price": _d(t.price),
                "qty": _d(t.qty),
                "commission": _d(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.id,
            }
            for t in order.fills
        ]
    return out


def order_query(order: Order) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": _d(order.price),
        "origQty": _d(order.orig_qty),
        "executedQty": _d(order.executed_qty),
        "cummulativeQuoteQty": _d(order.cummulative_quote_qty),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": True,
        "workingTime": order.time,
        "origQuoteOrderQty": _d(order.orig_quote_order_qty),
        "selfTradePreventionMode": order.self_trade_prevention_mode,
    }


def cancel_result(order: Order, cancel_client_id: str, now: int) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": now,
        "price": _d(order.price),
        "origQty": _d(order.orig_qty),
        "executedQty": _d(order.executed_qty),
        "origQuoteOrderQty": _d(order.orig_quote_order_qty),
        "cummulativeQuoteQty": _d(order.cummulative_quote_qty),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "selfTradePreventionMode": order.self_trade_prevention_mode,
    }


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
        charset="UTF-8",
        headers=headers,
    )


def _error(exc: ApiError) -> web.Response:
    return _json({"code": exc.code, "msg": exc.msg}, exc.status, exc.headers)


# ====================================================================== endpoints table


@dataclass(frozen=True)
class Endpoint:
    name: str
    signed: bool
    weight: Callable[[Params], int]
    order_kind: str | None = None  # new | cancel | cancel_all | None


def _const(n: int) -> Callable[[Params], int]:
    return lambda p: n


def _depth_weight(p: Params) -> int:
    raw = p.values.get("limit", "100")
    n = int(raw) if raw.isdigit() else 100
    if n <= 100:
        return 5
    if n <= 500:
        return 25
    if n <= 1000:
        return 50
    return 250


def _symbol_weight(one: int, many: int) -> Callable[[Params], int]:
    return lambda p: one if p.values.get("symbol") else many


def _ticker_weight(p: Params) -> int:
    if p.values.get("symbol"):
        return 2
    raw = p.values.get("symbols")
    if raw:
        n = raw.count(",") + 1
        return 2 if n <= 20 else 40 if n <= 100 else 80
    return 80


ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("GET", "/api/v3/ping"): Endpoint("ping", False, _const(1)),
    ("GET", "/api/v3/time"): Endpoint("time", False, _const(1)),
    ("GET", "/api/v3/exchangeInfo"): Endpoint("exchangeInfo", False, _const(20)),
    ("GET", "/api/v3/depth"): Endpoint("depth", False, _depth_weight),
    ("GET", "/api/v3/trades"): Endpoint("trades", False, _const(25)),
    ("GET", "/api/v3/aggTrades"): Endpoint("aggTrades", False, _const(4)),
    ("GET", "/api/v3/avgPrice"): Endpoint("avgPrice", False, _const(2)),
    ("GET", "/api/v3/ticker/24hr"): Endpoint("ticker24hr", False, _ticker_weight),
    ("GET", "/api/v3/ticker/price"): Endpoint("tickerPrice", False, _symbol_weight(2, 4)),
    ("GET", "/api/v3/ticker/bookTicker"): Endpoint("bookTicker", False, _symbol_weight(2, 4)),
    ("GET", "/api/v3/account"): Endpoint("account", True, _const(20)),
    ("POST", "/api/v3/order"): Endpoint("newOrder", True, _const(1), "new"),
    ("POST", "/api/v3/order/test"): Endpoint("testOrder", True, _const(1)),
    ("POST", "/api/v3/order/cancelReplace"): Endpoint(
        "cancelReplace", True, _const(1), "cancel_replace"
    ),
    ("GET", "/api/v3/order"): Endpoint("getOrder", True, _const(4)),
    ("DELETE", "/api/v3/order"): Endpoint("cancelOrder", True, _const(1), "cancel"),
    ("GET", "/api/v3/openOrders"): Endpoint("openOrders", True, _symbol_weight(6, 80)),
    ("DELETE", "/api/v3/openOrders"): Endpoint("cancelAll", True, _const(1), "cancel_all"),
    ("GET", "/api/v3/allOrders"): Endpoint("allOrders", True, _const(20)),
    ("GET", "/api/v3/myTrades"): Endpoint("myTrades", True, _const(20)),
}


# ====================================================================== the exchange

PARAMS_KEY = web.RequestKey("sim_params", Params)
RAW_KEY = web.RequestKey("sim_raw", tuple)
ACCOUNT_KEY = web.RequestKey("sim_account", str)
LOG_KEY = web.RequestKey("sim_log", dict)


class SimExchange:
    """State of one simulated venue plus its aiohttp handlers."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock: Clock = config.clock or wall_clock_ms
        self.started_ms = self.clock()
        self.keys: dict[str, AccountConfig] = {a.api_key: a for a in config.accounts}
        self.market_paused = config.market_paused
        self.step_ms = config.step_ms
        self.faults = FaultInjector(FaultConfig(**vars(config.faults)))
        self._task: asyncio.Task[None] | None = None
        self._reset_state()
        self.streams = StreamHub(self)
        self.fix: FixBridge | None = None
        if config.fix is not None:
            acct = next(a for a in config.accounts if a.name == config.fix.account)
            desk = FixDesk(engine=lambda: self.engine, clock=self.clock, account=acct.name)
            self.fix = FixBridge(desk, config.fix, (acct.api_key, acct.api_secret))

    # ------------------------------------------------------------------ state

    def _reset_state(self) -> None:
        cfg = self.config
        self.engine = MatchingEngine(
            [s.instrument for s in cfg.symbols],
            self.clock,
            maker_fee=cfg.maker_fee,
            taker_fee=cfg.taker_fee,
            # ids keep growing across restarts and resets, as a real venue's do: an OMS
            # that outlives the simulator must never see a trade id twice
            first_id=int(time.time() * 1000) * 10,
        )
        for acct in cfg.accounts:
            self.engine.add_account(acct.name, dict(acct.balances))
        self.market: MarketModel | ReplayMarket
        if cfg.replay is not None:
            self.market = ReplayMarket(self.engine, cfg.replay)
        else:
            self.market = MarketModel(
                self.engine,
                {s.instrument.symbol: s.market for s in cfg.symbols},
                seed=cfg.seed,
            )
        self.market.step(self.clock())
        self.by_unified = {s.instrument.unified: s.instrument.symbol for s in cfg.symbols}
        self.requests: deque[dict[str, Any]] = deque(maxlen=cfg.request_log_size)
        self._seq = 0
        self._weights: dict[str, tuple[int, int]] = {}
        self._orders_10s: dict[str, tuple[int, int]] = {}
        self._orders_1d: dict[str, tuple[int, int]] = {}
        self._cancel_seq = 0

    def reset(self, keep_faults: bool = False) -> None:
        self._reset_state()
        self.streams.on_reset()
        if not keep_faults:
            self.faults = FaultInjector(FaultConfig(**vars(self.config.faults)))

    async def start_background(self, app: web.Application) -> None:
        self._task = asyncio.create_task(self._market_loop())
        self.streams.start()
        if self.fix is not None:
            await self.fix.start()

    async def stop_background(self, app: web.Application) -> None:
        await self.streams.stop()
        if self.fix is not None:
            await self.fix.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _market_loop(self) -> None:
        while True:
            await asyncio.sleep(max(self.step_ms, 1) / 1000.0)
            if self.market_paused:
                if isinstance(self.market, ReplayMarket):
                    self.market.hold(self.clock())  # replay time stands still
                continue
            try:
                self.market.step(self.clock())
            except Exception:  # keep stepping whatever happens
                log.exception("market step failed")

    def symbol_id(self, raw: str | None) -> str:
        if raw is None:
            raise _mandatory("symbol")
        sid = self.by_unified.get(raw.upper(), raw.upper())
        if sid not in self.engine.instruments:
            raise ApiError(400, -1121, "Invalid symbol.")
        return sid

    # ------------------------------------------------------------------ rate limits

    def _add_weight(self, ip: str, weight: int, now: int) -> int:
        minute = now // 60_000
        cur_minute, used = self._weights.get(ip, (minute, 0))
        if cur_minute != minute:
            used = 0
        used += weight
        self._weights[ip] = (minute, used)
        return used

    def _count_order(self, account: str, now: int) -> tuple[int, int]:
        w10 = now // 10_000
        cur, n10 = self._orders_10s.get(account, (w10, 0))
        n10 = n10 + 1 if cur == w10 else 1
        self._orders_10s[account] = (w10, n10)
        day = now // 86_400_000
        curd, n1d = self._orders_1d.get(account, (day, 0))
        n1d = n1d + 1 if curd == day else 1
        self._orders_1d[account] = (day, n1d)
        return n10, n1d

    # ------------------------------------------------------------------ request parsing

    @staticmethod
    async def _raw(request: web.Request) -> tuple[str, str]:
        qs = request.rel_url.raw_query_string
        body = ""
        if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
            raw = await request.read()
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(400, -1100, "Illegal characters found in a parameter.") from exc
        return qs, body

    async def params(self, request: web.Request) -> Params:
        cached = request.get(PARAMS_KEY)
        if isinstance(cached, Params):
            return cached
        qs, body = await self._raw(request)
        items = parse_qsl(qs, keep_blank_values=True)
        ctype = request.headers.get("Content-Type", "")
        if body and "json" in ctype:
            raise ApiError(400, -1100, "Illegal characters found in a parameter.")
        if body:
            items += parse_qsl(body, keep_blank_values=True)
        params = Params(items)
        request[PARAMS_KEY] = params
        request[RAW_KEY] = (qs, body)
        return params

    async def authenticate(self, request: web.Request) -> tuple[AccountConfig, Params]:
        params = await self.params(request)
        qs, body = request[RAW_KEY]
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise ApiError(401, -2014, "API-key format invalid.")
        acct = self.keys.get(key)
        if acct is None:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        request[ACCOUNT_KEY] = acct.name
        signature = params.values.get("signature")
        if not signature:
            raise _mandatory("signature")
        ts_raw = params.values.get("timestamp")
        if not ts_raw:
            raise _mandatory("timestamp")
        if not _INT_RE.match(ts_raw):
            raise ApiError(
                400,
                -1100,
                "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.",
            )
        recv_raw = params.values.get("recvWindow")
        recv_window = 5000
        if recv_raw:
            if not _INT_RE.match(recv_raw):
                raise ApiError(
                    400,
                    -1100,
                    "Illegal characters found in parameter 'recvWindow'; "
                    "legal range is '^[0-9]{1,20}$'.",
                )
            recv_window = int(recv_raw)
            if recv_window > 60_000:
                raise ApiError(400, -1131, "recvWindow must be less than 60000")
        payload = _strip_signature(qs) + _strip_signature(body)
        expected = hmac.new(acct.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        now = self.clock()
        ts = int(ts_raw)
        if ts >= now + 1000:
            raise ApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - ts > recv_window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return acct, params

    # ------------------------------------------------------------------ request log

    def _log_entry(self, request: web.Request, kind: str, params: Params | None) -> dict[str, Any]:
        self._seq += 1
        v = params.values if params is not None else {}
        acct = self.keys.get(request.headers.get("X-MBX-APIKEY", ""))
        entry: dict[str, Any] = {
            "seq": self._seq,
            "ts": self.clock(),
            "method": request.method,
            "path": request.path,
            "kind": kind,
            "account": acct.name if acct is not None else None,
            "symbol": v.get("symbol"),
            "side": v.get("side"),
            "type": v.get("type"),
            "quantity": v.get("quantity"),
            "price": v.get("price"),
            "quoteOrderQty": v.get("quoteOrderQty"),
            "timeInForce": v.get("timeInForce"),
            "clientOrderId": v.get("newClientOrderId")
            if kind == "new"
            else v.get("origClientOrderId"),
            "orderId": _int_or_none(v.get("orderId")),
            "http_status": None,
            "outcome": None,
            "executed_outcome": None,
            "order_status": None,
            "error_code": None,
            "error_msg": None,
            "fault": None,
        }
        if isinstance(self.market, ReplayMarket):
            # where the replay stood: the recorded book this request met (events applied)
            entry["replay_events"] = self.market.events
            entry["replay_ns"] = self.market.replay_ns
        self.requests.append(entry)
        return entry

    # ------------------------------------------------------------------ middleware

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/sim/"):
            try:
                return await handler(request)
            except web.HTTPException:
                raise
            except ApiError as exc:
                return _error(exc)
            except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
                return _json({"error": str(exc)}, 400)
        if path == "/ws" or path.startswith(("/ws/", "/stream")):
            return await handler(request)  # market-data streams (venues/sim/streams.py)
        if not path.startswith("/api/"):
            return web.Response(status=404, text="Not Found")
        ep = ENDPOINTS.get((request.method, path))
        if ep is None:
            if any(p == path for (_, p) in ENDPOINTS):
                return web.Response(status=405, text="Method Not Allowed")
            return web.Response(status=404, text="Not Found")
        entry: dict[str, Any] | None = None
        try:
            params: Params | None = await self.params(request)
        except ApiError as exc:
            params = None
            parse_error: ApiError | None = exc
        else:
            parse_error = None
        if ep.order_kind is not None:
            entry = self._log_entry(request, ep.order_kind, params)
            request[LOG_KEY] = entry
        resp = await self._serve_api(request, handler, ep, params, parse_error, entry)
        if entry is not None:
            entry["http_status"] = resp.status
        return resp

    async def _serve_api(
        self,
        request: web.Request,
        handler: Handler,
        ep: Endpoint,
        params: Params | None,
        parse_error: ApiError | None,
        entry: dict[str, Any] | None,
    ) -> web.StreamResponse:
        now = self.clock()
        ip = request.remote or "?"
        faults = self.faults
        weight = ep.weight(params) if params is not None else 1
        used = self._add_weight(ip, weight, now)
        weight_headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        ban_left = faults.banned(now)
        if ban_left > 0:
            until = faults.config.ban_until_ms
            _set_outcome(entry, "fault-418", -1003)
            return _error(
                ApiError(
                    418,
                    -1003,
                    f"Way too much request weight used; IP banned until {until}. "
                    "Please use WebSocket Streams for live updates to avoid bans.",
                    {"Retry-After": str(math.ceil(ban_left)), **weight_headers},
                )
            )
        storm_left = faults.storming(now)
        if storm_left > 0:
            _set_outcome(entry, "fault-429", -1003)
            exc = self._weight_error(str(math.ceil(storm_left)))
            exc.headers.update(weight_headers)
            return _error(exc)
        if used > self.config.weight_limit_1m:
            retry = str(max(1, math.ceil((60_000 - now % 60_000) / 1000)))
            _set_outcome(entry, "rate-limited", -1003)
            limited = self._weight_error(retry)
            limited.headers.update(weight_headers)
            return _error(limited)

        latency = faults.latency_s()
        if latency > 0:
            await asyncio.sleep(latency)

        decision = faults.decide(
            is_new_order=ep.order_kind == "new",
            is_order=ep.order_kind is not None,
            is_signed=ep.signed,
        )
        if decision.action != "none" and not decision.after_execute:
            if entry is not None:
                entry["fault"] = decision.label
            _set_outcome(entry, decision.label, None)
            return await self._fault_before(request, decision, weight_headers)

        resp: web.StreamResponse
        try:
            if parse_error is not None:
                raise parse_error
            resp = await handler(request)
        except ApiError as exc:
            resp = _error(exc)
            outcome = "rate-limited" if exc.status == 429 else "rejected"
            _set_outcome(entry, outcome, exc.code, exc.msg)
        except EngineError as exc:
            api_exc = _api_error_from_engine(exc)
            resp = _error(api_exc)
            _set_outcome(entry, "rejected", api_exc.code, api_exc.msg)
        except web.HTTPException:
            raise
        except Exception:
            log.error(
                "unhandled error on %s %s\n%s", request.method, request.path, traceback.format_exc()
            )
            resp = _error(
                ApiError(500, -1000, "An unknown error occurred while processing the request.")
            )
            _set_outcome(entry, "rejected", -1000)
        resp.headers.update(weight_headers)
        if entry is not None and request.get(ACCOUNT_KEY) is not None:
            entry["account"] = request.get(ACCOUNT_KEY)

        if decision.action != "none" and decision.after_execute:
            if entry is not None:
                entry["executed_outcome"] = entry["outcome"]
                entry["outcome"] = decision.label
                entry["fault"] = decision.label
            return await self._fault_after(request, decision, resp, weight_headers)
        return resp

    def _weight_error(self, retry_after: str) -> ApiError:
        return ApiError(
            429,
            -1003,
            f"Too much request weight used; current limit is {self.config.weight_limit_1m} "
            "request weight per 1 MINUTE. Please use WebSocket Streams for live updates to "
            "avoid polling the API.",
            {"Retry-After": retry_after},
        )

    def _error_5xx(self, headers: dict[str, str]) -> web.Response:
        cfg = self.faults.config
        if cfg.error_body == "json":
            resp = _json(
                {
                    "code": -1001,
                    "msg": "Internal error; unable to process your request. Please try again.",
                },
                cfg.error_status,
            )
        else:
            resp = web.Response(
                status=cfg.error_status, text="Service Unavailable.", content_type="text/plain"
            )
        resp.headers.update(headers)
        return resp

    async def _fault_before(
        self, request: web.Request, decision: Decision, headers: dict[str, str]
    ) -> web.StreamResponse:
        if decision.action == "reject":
            code, msg = self.faults.reject_message()
            resp = _error(ApiError(400, code, msg))
            resp.headers.update(headers)
            return resp
        if decision.action == "error":
            return self._error_5xx(headers)
        if decision.action == "timeout":
            await asyncio.sleep(self.faults.config.timeout_ms / 1000.0)
            resp = _error(
                ApiError(
                    503,
                    -1007,
                    "Timeout waiting for response from backend server. Send status unknown; "
                    "execution status unknown.",
                )
            )
            resp.headers.update(headers)
            return resp
        return _drop(request)

    async def _fault_after(
        self,
        request: web.Request,
        decision: Decision,
        resp: web.StreamResponse,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        if decision.action == "error":
            return self._error_5xx(headers)
        if decision.action == "timeout":
            await asyncio.sleep(self.faults.config.timeout_ms / 1000.0)
            return resp
        return _drop(request)

    # ------------------------------------------------------------------ public endpoints

    async def ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def time(self, request: web.Request) -> web.Response:
        return _json({"serverTime": self.clock()})

    def _symbol_info(self, inst: Instrument) -> dict[str, Any]:
        return {
            "symbol": inst.symbol,
            "status": "TRADING",
            "baseAsset": inst.base,
            "baseAssetPrecision": inst.base_precision,
            "quoteAsset": inst.quote,
            "quotePrecision": inst.quote_precision,
            "quoteAssetPrecision": inst.quote_precision,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": _d(inst.min_price),
                    "maxPrice": _d(inst.max_price),
                    "tickSize": _d(inst.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": _d(inst.min_qty),
                    "maxQty": _d(inst.max_qty),
                    "stepSize": _d(inst.lot_size),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": _d(inst.min_qty),
                    "maxQty": _d(inst.market_max_qty),
                    "stepSize": _d(inst.lot_size),
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": _d(inst.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": _d(inst.max_notional),
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "MIN_NOTIONAL",
                    "minNotional": _d(inst.min_notional),
                    "applyToMarket": True,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": inst.max_num_orders},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }

    def _symbols_param(self, params: Params) -> list[str] | None:
        one = params.get("symbol")
        many = params.get("symbols")
        if one is not None and many is not None:
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        if one is not None:
            return [self.symbol_id(one)]
        if many is not None:
            try:
                parsed = json.loads(many)
            except ValueError as exc:
                raise ApiError(
                    400, -1100, "Illegal characters found in parameter 'symbols'."
                ) from exc
            if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
                raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'.")
            return [self.symbol_id(s) for s in parsed]
        return None

    async def exchange_info(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        wanted = self._symbols_param(params)
        params.get("permissions")
        params.get("showPermissionSets")
        params.get("symbolStatus")
        insts = [self.engine.instruments[s] for s in (wanted or list(self.engine.instruments))]
        cfg = self.config
        return _json(
            {
                "timezone": "UTC",
                "serverTime": self.clock(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": cfg.weight_limit_1m,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "SECOND",
                        "intervalNum": 10,
                        "limit": cfg.order_limit_10s,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "DAY",
                        "intervalNum": 1,
                        "limit": cfg.order_limit_1d,
                    },
                ],
                "exchangeFilters": [],
                "symbols": [self._symbol_info(i) for i in insts],
            }
        )

    async def depth(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        sid = self.symbol_id(params.req("symbol"))
        limit = params.limit(100, 5000)
        bids, asks = self.engine.depth(sid, limit)
        return _json(
            {
                "lastUpdateId": self.engine.books[sid].update_id,
                "bids": [[_d(p), _d(q)] for p, q in bids],
                "asks": [[_d(p), _d(q)] for p, q in asks],
            }
        )

    async def trades(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        sid = self.symbol_id(params.req("symbol"))
        limit = params.limit(500, 1000)
        return _json(
            [
                {
                    "id": t.id,
                    "price": _d(t.price),
                    "qty": _d(t.qty),
                    "quoteQty": _d(t.price * t.qty),
                    "time": t.time,
                    "isBuyerMaker": t.is_buyer_maker,
                    "isBestMatch": True,
                }
                for t in self.engine.recent_trades(sid, limit)
            ]
        )

    async def agg_trades(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        sid = self.symbol_id(params.req("symbol"))
        limit = params.limit(500, 1000)
        from_id = params.integer("fromId")
        start = params.integer("startTime")
        end = params.integer("endTime")
        trades = self.engine.recent_trades(sid, 0 if limit == 0 else 1_000_000)
        sel = [
            t
            for t in trades
            if (from_id is None or t.id >= from_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        sel = sel[:limit] if (from_id is not None or start is not None) else sel[-limit:]
        return _json(
            [
                {
                    "a": t.id,
                    "p": _d(t.price),
                    "q": _d(t.qty),
                    "f": t.id,
                    "l": t.id,
                    "T": t.time,
                    "m": t.is_buyer_maker,
                    "M": True,
                }
                for t in sel
            ]
        )

    async def avg_price(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        sid = self.symbol_id(params.req("symbol"))
        t = self.engine.ticker_24h(sid)
        return _json({"mins": 5, "price": _d(t.last_price), "closeTime": self.clock()})

    def _ticker(self, sid: str) -> dict[str, Any]:
        t = self.engine.ticker_24h(sid)
        bids, asks = self.engine.depth(sid, 1)
        change = t.last_price - t.open_price
        pct = (change / t.open_price * 100) if t.open_price else Decimal(0)
        wavg = (t.quote_volume / t.volume) if t.volume else t.last_price
        return {
            "symbol": sid,
            "priceChange": _d(change),
            "priceChangePercent": format_decimal(pct, 3),
            "weightedAvgPrice": _d(wavg),
            "prevClosePrice": _d(t.prev_close_price),
            "lastPrice": _d(t.last_price),
            "lastQty": _d(t.last_qty),
            "bidPrice": _d(bids[0][0]) if bids else "0.00000000",
            "bidQty": _d(bids[0][1]) if bids else "0.00000000",
            "askPrice": _d(asks[0][0]) if asks else "0.00000000",
            "askQty": _d(asks[0][1]) if asks else "0.00000000",
            "openPrice": _d(t.open_price),
            "highPrice": _d(t.high_price),
            "lowPrice": _d(t.low_price),
            "volume": _d(t.volume),
            "quoteVolume": _d(t.quote_volume),
            "openTime": t.open_time,
            "closeTime": t.close_time,
            "firstId": t.first_id,
            "lastId": t.last_id,
            "count": t.count,
        }

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        wanted = self._symbols_param(params)
        params.get("type")
        if params.get("symbol") is not None and wanted:
            return _json(self._ticker(wanted[0]))
        return _json([self._ticker(s) for s in (wanted or list(self.engine.instruments))])

    async def ticker_price(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        wanted = self._symbols_param(params)
        items = [
            {"symbol": s, "price": _d(self.engine.ticker_24h(s).last_price)}
            for s in (wanted or list(self.engine.instruments))
        ]
        if params.get("symbol") is not None:
            return _json(items[0])
        return _json(items)

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = await self.params(request)
        wanted = self._symbols_param(params)
        items = []
        for s in wanted or list(self.engine.instruments):
            bids, asks = self.engine.depth(s, 1)
            items.append(
                {
                    "symbol": s,
                    "bidPrice": _d(bids[0][0]) if bids else "0.00000000",
                    "bidQty": _d(bids[0][1]) if bids else "0.00000000",
                    "askPrice": _d(asks[0][0]) if asks else "0.00000000",
                    "askQty": _d(asks[0][1]) if asks else "0.00000000",
                }
            )
        if params.get("symbol") is not None:
            return _json(items[0])
        return _json(items)

    # ------------------------------------------------------------------ signed endpoints

    def _assets(self) -> list[str]:
        assets: set[str] = set()
        for inst in self.engine.instruments.values():
            assets.update((inst.base, inst.quote))
        return sorted(assets)

    async def account(self, request: web.Request) -> web.Response:
        acct_cfg, params = await self.authenticate(request)
        omit_zero = (params.get("omitZeroBalances") or "false").lower() == "true"
        params.check_all_read()
        acct = self.engine.account(acct_cfg.name)
        assets = sorted(set(self._assets()) | set(acct.balances))
        balances = []
        for asset in assets:
            bal = acct.balances.get(asset)
            free = bal.free if bal else Decimal(0)
            locked = bal.locked if bal else Decimal(0)
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": _d(free), "locked": _d(locked)})
        maker_bps = int(self.config.maker_fee * 10000)
        taker_bps = int(self.config.taker_fee * 10000)
        return _json(
            {
                "makerCommission": maker_bps,
                "takerCommission": taker_bps,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": _d(self.config.maker_fee),
                    "taker": _d(self.config.taker_fee),
                    "buyer": "0.00000000",
                    "seller": "0.00000000",
                },
                "canTrade": True,
                "canWithdraw": False,
                "canDeposit": False,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.clock(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": zlib.crc32(acct_cfg.name.encode()),
            }
        )

    def _order_args(self, params: Params) -> dict[str, Any]:
        sid = self.symbol_id(params.req("symbol"))
        side = params.req("side").upper()
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        otype = params.req("type").upper()
        if otype not in (LIMIT, MARKET, LIMIT_MAKER):
            raise ApiError(400, -1116, "Invalid orderType.")
        tif = params.get("timeInForce")
        if tif is not None:
            tif = tif.upper()
            if tif not in ("GTC", "IOC", "FOK"):
                raise ApiError(400, -1115, "Invalid timeInForce.")
        for unsupported in ("stopPrice", "trailingDelta", "icebergQty"):
            if params.get(unsupported) is not None:
                raise ApiError(400, -1106, f"Parameter '{unsupported}' sent when not required.")
        return {
            "symbol": sid,
            "side": side,
            "type": otype,
            "quantity": params.dec("quantity"),
            "price": params.dec("price"),
            "time_in_force": tif,
            "client_order_id": params.get("newClientOrderId"),
            "quote_order_qty": params.dec("quoteOrderQty"),
        }

    def _resp_type(self, params: Params, otype: str) -> str:
        rt = params.get("newOrderRespType")
        if rt is None:
            return "FULL" if otype in (LIMIT, MARKET) else "ACK"
        rt = rt.upper()
        if rt not in ("ACK", "RESULT", "FULL"):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'newOrderRespType'.")
        return rt

    async def new_order(self, request: web.Request) -> web.Response:
        acct_cfg, params = await self.authenticate(request)
        now = self.clock()
        n10, n1d = self._count_order(acct_cfg.name, now)
        count_headers = {"X-MBX-ORDER-COUNT-10S": str(n10), "X-MBX-ORDER-COUNT-1D": str(n1d)}
        if n10 > self.config.order_limit_10s:
            raise ApiError(
                429,
                -1015,
                f"Too many new orders; current limit is {self.config.order_limit_10s} orders "
                "per 10 SECOND.",
                {
                    "Retry-After": str(max(1, math.ceil((10_000 - now % 10_000) / 1000))),
                    **count_headers,
                },
            )
        try:
            args = self._order_args(params)
            resp_type = self._resp_type(params, args["type"])
            params.check_all_read(_IGNORED_ORDER_PARAMS)
            order = self.engine.place_order(acct_cfg.name, **args)
        except ApiError as exc:
            exc.headers.update(count_headers)
            raise
        except EngineError as exc:
            api_exc = _api_error_from_engine(exc)
            api_exc.headers.update(count_headers)
            raise api_exc from None
        entry = request.get(LOG_KEY)
        if entry is not None:
            entry["orderId"] = order.order_id
            entry["clientOrderId"] = order.client_order_id
            entry["order_status"] = order.status
            _set_outcome(entry, "accepted", None)
            if isinstance(self.market, ReplayMarket):  # the book it executed against
                entry["replay_events"] = self.market.events
                entry["replay_ns"] = self.market.replay_ns
        return _json(order_result(order, resp_type, now), headers=count_headers)

    async def cancel_replace(self, request: web.Request) -> web.Response:
        """Not supported (exchangeInfo says cancelReplaceAllowed=false): a definite -1020."""
        await self.authenticate(request)
        raise ApiError(400, -1020, "This operation is not supported.")

    async def test_order(self, request: web.Request) -> web.Response:
        _acct_cfg, params = await self.authenticate(request)
        self._order_args(params)
        params.get("computeCommissionRates")
        params.check_all_read(_IGNORED_ORDER_PARAMS | {"newOrderRespType"})
        return _json({})

    def _order_ref(self, params: Params) -> tuple[str, int | None, str | None]:
        sid = self.symbol_id(params.req("symbol"))
        oid = params.integer("orderId")
        cid = params.get("origClientOrderId")
        if oid is None and cid is None:
            raise ApiError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return sid, oid, cid

    async def get_order(self, request: web.Request) -> web.Response:
        acct_cfg, params = await self.authenticate(request)
        sid, oid, cid = self._order_ref(params)
        params.check_all_read()
        order = self.engine.get_order(acct_cfg.name, sid, oid, cid)
        return _json(order_query(order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        acct_cfg, params = await self.authenticate(request)
        sid, oid, cid = self._order_ref(params)
        new_cid = params.get("newClientOrderId")
        params.check_all_read(_IGNORED_ORDER_PARAMS)
        order = self.engine.cancel_order(acct_cfg.name, sid, oid, cid)
        now = self.clock()
        entry = request.get(LOG_KEY)
        if entry is not None:
            entry["orderId"] = order.order_id
            entry["clientOrderId"] = order.client_order_id
            entry["order_status"] = order.status
            _set_outcome(entry, "canceled", None)
        self._cancel_seq += 1
        return _json(cancel_result(order, new_cid or f"sim-cancel-{self._cancel_seq}", now))

    async def open_orders(self, request: web.Request) -> web.Response:
        acct_cfg, params = await self.authenticate(request)
        raw = params.get("symbol")
        sid = self.symbol_id(raw) if raw is not None else None
        params.check_all_read()
        return _json([order_query(o) for o in self.engine.open_orders(acct_cfg.name, sid)])

    async def cancel_all(self, request: web.Request) -> web.Response:
        acct_cfg, params = await self.authenticate(request)
        sid = self.symbol_id(params.req("symbol"))
        params.check_all_read()
        orders = self.engine.cancel_all(acct_cfg.name, sid)
        now = self.clock()
        out = []
        for order in orders:
            self._cancel_seq += 1
            out.append(cancel_result(order, f"sim-cancel-{self._cancel_seq}", now))
        entry = request.get(LOG_KEY)
        if entry is not None:
            entry["order_ids"] = [o.order_id for o in orders]
            entry["order_status"] = CANCELED
            _set_outcome(entry, "canceled", None)
        return _json(out)

    async def all_orders(self, request: web.Request) -> web.Response:
        acct_cfg, params = await self.authenticate(request)
        sid = self.symbol_id(params.req("symbol"))
        orders = self.engine.all_orders(
            acct_cfg.name,
            sid,
            order_id=params.integer("orderId"),
            start_time=params.integer("startTime"),
            end_time=params.integer("endTime"),
            limit=params.limit(500, 1000),
        )
        params.check_all_read()
        return _json([order_query(o) for o in orders])

    async def my_trades(self, request: web.Request) -> web.Response:
        acct_cfg, params = await self.authenticate(request)
        sid = self.symbol_id(params.req("symbol"))
        order_id = params.integer("orderId")
        from_id = params.integer("fromId")
        start = params.integer("startTime")
        end = params.integer("endTime")
        if from_id is not None and (start is not None or end is not None):
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        trades = self.engine.my_trades(
            acct_cfg.name,
            sid,
            order_id=order_id,
            start_time=start,
            end_time=end,
            from_id=from_id,
            limit=params.limit(500, 1000),
        )
        params.check_all_read()
        return _json(
            [
                {
                    "symbol": t.symbol,
                    "id": t.id,
                    "orderId": t.order_id,
                    "orderListId": -1,
                    "price": _d(t.price),
                    "qty": _d(t.qty),
                    "quoteQty": _d(t.quote_qty),
                    "commission": _d(t.commission),
                    "commissionAsset": t.commission_asset,
                    "time": t.time,
                    "isBuyer": t.is_buyer,
                    "isMaker": t.is_maker,
                    "isBestMatch": True,
                }
                for t in trades
            ]
        )

    # ------------------------------------------------------------------ admin endpoints

    async def _admin_body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.text()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"bad JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    async def sim_health(self, request: web.Request) -> web.Response:
        now = self.clock()
        return _json(
            {
                "status": "ok",
                "name": self.config.name,
                "time": now,
                "uptime_s": (now - self.started_ms) / 1000,
                "market_paused": self.market_paused,
            }
        )

    async def sim_streams(self, request: web.Request) -> web.Response:
        """``GET``: stream status; ``POST {"paused": bool, "disconnect": bool}``."""
        if request.method == "POST":
            return _json(self.streams.control(await self._admin_body(request)))
        return _json(self.streams.status())

    async def sim_fix(self, request: web.Request) -> web.Response:
        """``GET``: the FIX port's status; ``POST {"silent_orders": n}``: the next n
        NewOrderSingles execute but their reports are lost (the client must ask with an
        OrderStatusRequest). 404 without a FIX port."""
        if self.fix is None:
            return _json({"code": -1, "msg": "no FIX port (start with --fix-port)"}, 404)
        if request.method == "POST":
            body = await self._admin_body(request)
            silent = body.get("silent_orders", self.fix.desk.silent_orders)
            if not isinstance(silent, int) or isinstance(silent, bool) or silent < 0:
                return _json({"code": -1100, "msg": "silent_orders: a whole number >= 0"}, 400)
            self.fix.desk.silent_orders = silent
        return _json(self.fix.status())

    async def sim_faults_get(self, request: web.Request) -> web.Response:
        return _json(self.faults.as_dict(self.clock()))

    async def sim_faults_post(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        self.faults.update(body, self.clock())
        return _json(self.faults.as_dict(self.clock()))

    async def sim_requests(self, request: web.Request) -> web.Response:
        q = request.query
        cid = q.get("client_order_id")
        kind = q.get("kind")
        outcome = q.get("outcome")
        symbol = q.get("symbol")
        since = int(q.get("since_seq", "0"))
        limit = int(q.get("limit", "0"))
        sel = [
            e
            for e in self.requests
            if (cid is None or e["clientOrderId"] == cid)
            and (kind is None or e["kind"] == kind)
            and (outcome is None or e["outcome"] == outcome)
            and (symbol is None or e["symbol"] == symbol)
            and e["seq"] > since
        ]
        if limit > 0:
            sel = sel[-limit:]
        return _json({"requests": sel, "count": len(sel)})

    async def sim_reset(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        self.reset(keep_faults=bool(body.get("keep_faults", False)))
        return _json({"status": "reset"})

    def _market_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "paused": self.market_paused,
            "step_ms": self.step_ms,
            "symbols": {
                sid: {"mid": str(st.mid), "symbol": self.engine.instruments[sid].unified}
                for sid, st in self.market.states.items()
            },
        }
        if isinstance(self.market, ReplayMarket):
            state["replay"] = self.market.status()
        return state

    async def sim_state(self, request: web.Request) -> web.Response:
        depth = int(request.query.get("depth", "20"))
        books = {}
        for sid, book in self.engine.books.items():
            bids, asks = self.engine.depth(sid, depth)
            books[sid] = {
                "bids": [[str(p), str(q)] for p, q in bids],
                "asks": [[str(p), str(q)] for p, q in asks],
                "update_id": book.update_id,
            }
        balances = {
            name: {
                a: {"free": str(b.free), "locked": str(b.locked)} for a, b in acct.balances.items()
            }
            for name, acct in self.engine.accounts.items()
            if name != HOUSE_ACCOUNT
        }
        open_orders = {
            a.name: [order_query(o) for o in self.engine.open_orders(a.name)]
            for a in self.config.accounts
        }
        return _json(
            {
                "name": self.config.name,
                "time": self.clock(),
                "market": self._market_state(),
                "books": books,
                "balances": balances,
                "open_orders": open_orders,
                "fee_account": FEE_ACCOUNT,
            }
        )

    async def sim_market(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        if "paused" in body:
            self.market_paused = bool(body["paused"])
        if "step_ms" in body:
            step = int(body["step_ms"])
            if step < 1:
                raise ValueError("step_ms must be >= 1")
            self.step_ms = step
        mids = body.get("mid") or {}
        if not isinstance(mids, dict):
            raise ValueError("mid must be an object {symbol: price}")
        for sym, mid in mids.items():
            sid = self.symbol_id(str(sym))
            self.market.set_mid(sid, Decimal(str(mid)), self.clock())
        configs = body.get("config") or {}
        if not isinstance(configs, dict):
            raise ValueError("config must be an object {symbol: {...}}")
        for sym, changes in configs.items():
            sid = self.symbol_id(str(sym))
            if not isinstance(changes, dict):
                raise ValueError("config entries must be objects")
            conv: dict[str, object] = {}
            for k, v in changes.items():
                if k in ("volatility", "max_drift", "taker_rate_per_s"):
                    conv[k] = float(v)
                elif k in ("spread_ticks", "level_spacing_ticks", "levels"):
                    conv[k] = int(v)
                elif k in ("size_per_level", "size_growth", "depth_scale"):
                    conv[k] = Decimal(str(v))
                else:
                    raise ValueError(f"unknown market setting {k!r}")
            self.market.update_config(sid, **conv)
        if body.get("step"):
            self.market.step(self.clock())
        return _json(self._market_state())

    async def sim_orders(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        account = str(body.get("account", self.config.accounts[0].name))
        if account not in self.engine.accounts:
            raise ValueError(f"unknown account {account!r}")

        def dec(name: str) -> Decimal | None:
            v = body.get(name)
            return None if v is None else Decimal(str(v))

        try:
            order = self.engine.place_order(
                account,
                self.symbol_id(str(body.get("symbol"))),
                str(body.get("side", "")).upper(),
                str(body.get("type", "LIMIT")).upper(),
                quantity=dec("quantity"),
                price=dec("price"),
                time_in_force=body.get("timeInForce", GTC)
                if str(body.get("type", "LIMIT")).upper() == LIMIT
                else None,
                client_order_id=body.get("clientOrderId"),
                quote_order_qty=dec("quoteOrderQty"),
            )
        except EngineError as exc:
            raise _api_error_from_engine(exc) from None
        return _json(order_result(order, "FULL", self.clock()))

    async def sim_balances(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        account = str(body.get("account", self.config.accounts[0].name))
        acct = self.engine.account(account)
        balances = body.get("balances") or {}
        if not isinstance(balances, dict):
            raise ValueError("balances must be an object {asset: amount}")
        for asset, amount in balances.items():
            self.engine.set_free_balance(account, str(asset), Decimal(str(amount)))
        return _json(
            {
                "balances": {
                    a: {"free": str(b.free), "locked": str(b.locked)}
                    for a, b in acct.balances.items()
                }
            }
        )


def _strip_signature(raw: str) -> str:
    if "signature=" not in raw:
        return raw
    return "&".join(p for p in raw.split("&") if not p.startswith("signature="))


def _int_or_none(v: str | None) -> int | None:
    return int(v) if v is not None and v.isdigit() else None


def _set_outcome(
    entry: dict[str, Any] | None, outcome: str, code: int | None, msg: str | None = None
) -> None:
    if entry is None:
        return
    entry["outcome"] = outcome
    if code is not None:
        entry["error_code"] = code
    if msg is not None:
        entry["error_msg"] = msg


class _DroppedResponse(web.Response):
    """A response that is never written: the connection was closed instead."""

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _drop(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    return _DroppedResponse(status=500)


# ====================================================================== app / CLI


SIM_KEY = web.AppKey("sim", SimExchange)


def build_app(config: SimConfig) -> web.Application:
    """The aiohttp application for one simulated venue (market stepping starts on startup)."""
    sim = SimExchange(config)
    app = web.Application(middlewares=[sim.middleware], client_max_size=1024 * 1024)
    app[SIM_KEY] = sim
    r = app.router
    r.add_get("/api/v3/ping", sim.ping)
    r.add_get("/api/v3/time", sim.time)
    r.add_get("/api/v3/exchangeInfo", sim.exchange_info)
    r.add_get("/api/v3/depth", sim.depth)
    r.add_get("/api/v3/trades", sim.trades)
    r.add_get("/api/v3/aggTrades", sim.agg_trades)
    r.add_get("/api/v3/avgPrice", sim.avg_price)
    r.add_get("/api/v3/ticker/24hr", sim.ticker_24hr)
    r.add_get("/api/v3/ticker/price", sim.ticker_price)
    r.add_get("/api/v3/ticker/bookTicker", sim.book_ticker)
    r.add_get("/api/v3/account", sim.account)
    r.add_post("/api/v3/order", sim.new_order)
    r.add_post("/api/v3/order/test", sim.test_order)
    r.add_post("/api/v3/order/cancelReplace", sim.cancel_replace)
    r.add_get("/api/v3/order", sim.get_order)
    r.add_delete("/api/v3/order", sim.cancel_order)
    r.add_get("/api/v3/openOrders", sim.open_orders)
    r.add_delete("/api/v3/openOrders", sim.cancel_all)
    r.add_get("/api/v3/allOrders", sim.all_orders)
    r.add_get("/api/v3/myTrades", sim.my_trades)
    r.add_get("/sim/health", sim.sim_health)
    r.add_get("/sim/faults", sim.sim_faults_get)
    r.add_post("/sim/faults", sim.sim_faults_post)
    r.add_get("/sim/requests", sim.sim_requests)
    r.add_post("/sim/reset", sim.sim_reset)
    r.add_get("/sim/state", sim.sim_state)
    r.add_post("/sim/market", sim.sim_market)
    r.add_post("/sim/orders", sim.sim_orders)
    r.add_post("/sim/balances", sim.sim_balances)
    r.add_get("/sim/streams", sim.sim_streams)
    r.add_get("/sim/fix", sim.sim_fix)
    r.add_post("/sim/fix", sim.sim_fix)
    r.add_post("/sim/streams", sim.sim_streams)
    r.add_get("/ws", sim.streams.handle_raw)
    r.add_get("/ws/{streams:.*}", sim.streams.handle_raw)
    r.add_get("/stream", sim.streams.handle_combined)
    app.on_startup.append(sim.start_background)
    app.on_cleanup.append(sim.stop_background)
    return app


# The demo's two venues (``oms up``): one fundamental price (the default seed), each with
# its own basis, spread, depth, fees and order latency, so neither is always the best.
DEMO_VENUE_ARGS = {
    "sim-a": ["--seed", "1", "--spread-ticks", "2", "--taker-fee", "0.001"],
    "sim-b": [
        "--seed", "2", "--spread-ticks", "8", "--depth-scale", "2",
        "--maker-fee", "0.0006", "--taker-fee", "0.0009", "--latency-ms", "2",
    ],
}  # fmt: skip


# The demo's FIX venue (``OMS_DEMO_FIX_VENUE=1``): a third simulator, its name, REST
# port and FIX port (omsweb/cli.py runs it, omsweb/demo.py adds its venue row).
DEMO_FIX_VENUE = ("sim-fix", 8103, 8113)


def _parse_kv(raw: str, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"{flag}: expected SYMBOL=VALUE, got {part!r}")
        out[key.strip().upper()] = value.strip()
    return out


DEFAULT_SYMBOLS = "BTC/USDT,ETH/USDT"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m venues.sim", description="Simulated Binance-spot-compatible exchange"
    )
    p.add_argument("--name", default="sim")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8101, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--symbols", default=None, help="default BTC/USDT,ETH/USDT; with --replay: the recorded"
    )
    p.add_argument("--mid", default="", help="e.g. BTC/USDT=60000,ETH/USDT=3000")
    p.add_argument("--depth-scale", type=Decimal, default=Decimal("1"))
    p.add_argument(
        "--fundamental-seed",
        type=int,
        default=14,
        help="mids follow the shared fundamental price of this seed (-1: independent walk)",
    )
    p.add_argument("--basis-bps", type=float, default=2.0, help="venue deviation, stdev in bps")
    p.add_argument("--spread-ticks", type=int, default=None, help="best ask - best bid")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every /api answer")
    p.add_argument("--api-key", default=os.environ.get("SIMEX_API_KEY", DEFAULT_API_KEY))
    p.add_argument("--api-secret", default=os.environ.get("SIMEX_API_SECRET", DEFAULT_API_SECRET))
    p.add_argument("--maker-fee", type=Decimal, default=Decimal("0.001"))
    p.add_argument("--taker-fee", type=Decimal, default=Decimal("0.001"))
    p.add_argument("--step-ms", type=int, default=100)
    p.add_argument("--paused", action="store_true", help="start with the market model paused")
    p.add_argument("--weight-limit", type=int, default=6000)
    p.add_argument("--order-limit-10s", type=int, default=100)
    p.add_argument("--log-level", default="WARNING")
    p.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="FILE",
        help="the book follows this recording (repeat for more symbols); see venues/sim/replay.py",
    )
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (2: twice as fast)")
    p.add_argument("--loop", action="store_true", help="start the recording again at its end")
    p.add_argument("--fix-port", type=int, default=None, help="also speak FIX 4.4 on this port")
    p.add_argument("--fix-comp-id", default="SIMEX", help="our SenderCompID on the FIX port")
    p.add_argument("--fix-sessions", default="OMS", help="clients' CompIDs, comma-separated")
    p.add_argument("--fix-store", type=Path, default=None, help="FIX message store directory")
    return p.parse_args(argv)


def _replay_config(args: argparse.Namespace) -> tuple[ReplayConfig | None, list[str]]:
    """The replay settings and the recorded symbols, or a clear exit."""
    if not args.replay:
        if args.speed != 1.0 or args.loop:
            raise SystemExit("--speed and --loop only apply with --replay FILE")
        return None, []
    try:
        config = ReplayConfig(tuple(Path(p) for p in args.replay), args.speed, args.loop)
        symbols = [unified_symbol(s) for s in recorded_symbols(config.paths)]
    except (DataError, ValueError) as exc:
        raise SystemExit(f"--replay: {exc}") from None
    if not symbols:
        raise SystemExit(f"--replay: no market events in {', '.join(args.replay)}")
    return config, symbols


def config_from_args(args: argparse.Namespace) -> SimConfig:
    mids = _parse_kv(args.mid, "--mid")
    replay, recorded = _replay_config(args)
    listed = args.symbols if args.symbols is not None else ",".join(recorded) or DEFAULT_SYMBOLS
    symbols = []
    for unified in filter(None, (s.strip().upper() for s in listed.split(","))):
        mid = Decimal(mids[unified]) if unified in mids else None
        sym = default_symbol(unified, mid, args.depth_scale)
        if args.fundamental_seed >= 0:
            sym.market.fundamental_seed = args.fundamental_seed
            sym.market.basis_bps = args.basis_bps
        if args.spread_ticks is not None:
            sym.market.spread_ticks = args.spread_ticks
        symbols.append(sym)
    unknown = set(mids) - {s.instrument.unified for s in symbols}
    if unknown:
        raise SystemExit(f"--mid names symbols not in --symbols: {sorted(unknown)}")
    return SimConfig(
        name=args.name,
        host=args.host,
        port=args.port,
        seed=args.seed,
        symbols=symbols,
        accounts=[AccountConfig("default", args.api_key, args.api_secret)],
        maker_fee=args.maker_fee,
        taker_fee=args.taker_fee,
        step_ms=args.step_ms,
        market_paused=args.paused,
        weight_limit_1m=args.weight_limit,
        order_limit_10s=args.order_limit_10s,
        faults=FaultConfig(latency_ms=args.latency_ms),
        replay=replay,
        fix=_fix_port(args),
    )


def _fix_port(args: argparse.Namespace) -> FixPortConfig | None:
    if args.fix_port is None:
        return None
    sessions = tuple(s.strip() for s in args.fix_sessions.split(",") if s.strip())
    if not sessions:
        raise SystemExit("--fix-sessions: at least one client CompID")
    store = args.fix_store or Path(tempfile.gettempdir()) / f"oms-simex-fix-{args.name}"
    return FixPortConfig(
        port=args.fix_port, host=args.host, store_dir=store, comp_id=args.fix_comp_id,
        sessions=sessions,
    )  # fmt: skip


async def serve(
    config: SimConfig,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int, SimExchange], None] | None = None,
) -> None:
    """Run the server until ``stop`` is set or SIGTERM/SIGINT arrives.

    ``on_ready(port, sim)`` is called once listening (``config.port`` 0 picks a free port).
    Signal handlers are only installed when running in the main thread.
    """
    app = build_app(config)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=config.shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    await site.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    port = config.port
    sockets = getattr(site._server, "sockets", None)
    if sockets:
        port = int(sockets[0].getsockname()[1])
    if on_ready is not None:
        on_ready(port, app[SIM_KEY])
    print(
        f"simex {config.name} listening on http://{config.host}:{port} (api /api/v3, admin /sim)",
        flush=True,
    )
    if config.fix is not None:
        print(
            f"simex {config.name} FIX 4.4 on {config.fix.host}:{config.fix.port} as "
            f"{config.fix.comp_id} for {','.join(config.fix.sessions)}",
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: ``python -m venues.sim --name sim-a --port 8101 ...``."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    config = config_from_args(args)
    asyncio.run(serve(config))
