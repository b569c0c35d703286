"""The ccxt adapter: drives any ccxt exchange (spot) through the ``VenueAdapter`` contract.

One ccxt exchange instance per adapter, configured so that only spot endpoints are
ever called, ccxt's own throttle is off (the OMS has a cluster-wide limiter fed by
``last_used_weight()`` and the errors below) and every answer or error is turned into
the plain values and the four error classes of ``venues.base``.

Error mapping
=============

ccxt's hierarchy (``ccxt/base/errors.py``) matters for the order of the checks:
``OrderNotFound`` and ``DuplicateOrderId`` are subclasses of ``InvalidOrder``;
``RateLimitExceeded``, ``DDoSProtection``, ``RequestTimeout``, ``ExchangeNotAvailable``
(and its ``OnMaintenance``) and ``InvalidNonce`` are subclasses of ``NetworkError``,
itself an ``OperationFailed`` (not an ``ExchangeError``); ``BadSymbol`` is a
``BadRequest``; ``PermissionDenied`` and ``AccountSuspended`` are
``AuthenticationError``. Checks run top to bottom, first match wins:

=========================================  ====================  ==============================================
ccxt exception (binance code / HTTP)       normalised to         why
=========================================  ====================  ==============================================
RateLimitExceeded, DDoSProtection          VenueRateLimited      binance raises DDoSProtection for every 429
(429, 418, -1003, -1015)                                         and 418; ``retry_after`` from the response's
                                                                 ``Retry-After``; ``banned`` when HTTP 418
OrderNotFound (-2011, -2013)               VenueOrderNotFound    checked before its parent InvalidOrder
DuplicateOrderId, binance -2010            (submit) the existing the venue already holds our client order id:
"Duplicate order sent."                    order, fetched        the earlier send worked; not a rejection
InvalidNonce (-1021, clock skew)           VenueInDoubt          a NetworkError in ccxt; not executed, but
                                                                 resolving it by client order id is safe
RequestTimeout (-1007, 408, 504, timeout)  VenueInDoubt          may have executed
ExchangeNotAvailable (5xx, 403 WAF,        VenueInDoubt          may have executed / retry later
non-JSON 4xx), OnMaintenance
NetworkError (connection reset/refused)    VenueInDoubt          may have executed
OperationFailed, BadResponse, NullResponse VenueInDoubt          -1000/-1001/-1006 "execution status unknown"
CancelPending
InsufficientFunds (-2010 "insufficient     VenueRejected         definite refusal; reason = venue ``msg``,
balance")                                                        code = venue ``code`` (e.g. "-2010")
InvalidOrder and other subclasses          VenueRejected         filter failures (-1013, LOT_SIZE, PRICE_FILTER)
(OrderImmediatelyFillable, ...)                                  -2010 NEW_ORDER_REJECTED
BadRequest, BadSymbol (-11xx, -1121)       VenueRejected
AuthenticationError, PermissionDenied,     VenueRejected         -1002, -1022, -2014, -2015
AccountSuspended
OperationRejected (incl. MarketClosed),    VenueRejected         raised by ccxt before sending or a definite
ArgumentsRequired, NotSupported,                                 venue refusal
InvalidAddress
plain ExchangeError with HTTP 4xx and a    VenueRejected         the venue answered with its own error code
venue error code in the body                                     (binance: 4xx = the sender's fault)
plain ExchangeError otherwise (5xx, no     VenueInDoubt          ambiguous: never a rejection by guess
answer, unknown shape)
any other exception                        VenueInDoubt          never a rejection by guess
=========================================  ====================  ==============================================

Binance specifics verified in ``ccxt/binance.py`` (ccxt 4.5.x):

* ``handle_errors`` looks up the *spot* error table (``exceptions['spot']``) only when
  the URL starts with ``https://api.binance.com``; with a base URL override it would be
  skipped, so the adapter merges that table into the instance's top-level table (the
  venue is spot-only, so that is the table that applies).
* A cancel of an order that is no longer open answers -2011 "Unknown order sent."
  (``OrderNotFound``), so amend looks the order up to tell "already filled" apart.
"""

from __future__ import annotations

import copy
import decimal
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from venues.base import (
    Balance,
    BookLevel,
    Capabilities,
    OrderBook,
    OrderRequest,
    VenueAdapter,
    VenueError,
    VenueInDoubt,
    VenueOrder,
    VenueOrderNotFound,
    VenueOrderStatus,
    VenueRateLimited,
    VenueRejected,
    VenueTrade,
)

log = logging.getLogger(__name__)

# ccxt classes whose spot REST API is Binance's /api/v3 (same paths, params, errors).
BINANCE_SPOT_IDS = frozenset({"binance", "binanceus"})

# Options that keep a ccxt ``binance`` instance on spot endpoints only. Every code path
# the adapter uses was read in ccxt/binance.py:
# - load_markets -> fetch_currencies: returns {} unless options['fetchCurrencies'] is
#   True (else sapi capital/config/getall);
# - fetch_markets: one call per options['fetchMarkets']['types'] entry ('linear' ->
#   fapi, 'inverse' -> dapi), plus sapi margin pairs when options['fetchMargins'] and
#   credentials are set; 'loadAllOptions' would add eapi;
# - fetch_balance: privateGetAccount when type resolves to 'spot' (defaultType);
# - create_order / fetch_order / cancel_order / fetch_open_orders / fetch_my_trades /
#   cancel_all_orders: the private api/v3 endpoints for a spot market with no
#   marginMode / portfolioMargin / stock params (we never pass those);
# - fetch_open_orders without a symbol raises unless the warning is switched off.
BINANCE_SPOT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "defaultSubType": None,
    "fetchMarkets": {"types": ["spot"], "loadAllOptions": False},
    "fetchMargins": False,
    "fetchCurrencies": False,
    "adjustForTimeDifference": False,
    "warnOnFetchOpenOrdersWithoutSymbol": False,
    "fetchOpenOrders": {"warnWithoutSymbol": False},
    "portfolioMargin": False,
    "papi": False,
    # market orders are sent with `quantity`, never converted to `quoteOrderQty`
    "createOrder": {"quoteOrderQty": False},
    # FULL: the placement answer carries the fills (ccxt's default, pinned here)
    "newOrderRespType": {"market": "FULL", "limit": "FULL"},
    # A signed request the venue receives more than recvWindow after its timestamp is
    # refused. That bounds how long an in-doubt submit can still execute: after
    # RECV_WINDOW_MS (plus clock margin) the OMS may re-send an order the venue says
    # it never received (orders/pipeline.py) without risking a double execution.
    "recvWindow": 5000,
}
RECV_WINDOW_MS = 5000

# The ``urls['api']`` keys the spot endpoints are declared under in binance.py's
# ``api`` section: ``public`` (exchangeInfo, depth, ticker/24hr, time, ping) and
# ``private`` (order, openOrders, account, myTrades), both on /api/v3; ``v1`` is the
# legacy /api/v1 section (userDataStream). Every other key (sapi*, fapi*, dapi*,
# eapi*, papi*) is removed under a base URL override, so a stray non-spot call fails
# locally (ccxt's sign() raises NotSupported) instead of reaching the real exchange
# with our credentials.
BINANCE_SPOT_API_PATHS = {"public": "/api/v3", "private": "/api/v3", "v1": "/api/v1"}

# Binance's raw order statuses. EXPIRED / EXPIRED_IN_MATCH are kept apart from
# CANCELED (ccxt folds EXPIRED_IN_MATCH into 'expired' but other versions did not).
_BINANCE_STATUS = {
    "FILLED": VenueOrderStatus.FILLED,
    "CANCELED": VenueOrderStatus.CANCELED,
    "CANCELLED": VenueOrderStatus.CANCELED,
    "REJECTED": VenueOrderStatus.REJECTED,
    "EXPIRED": VenueOrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": VenueOrderStatus.EXPIRED,
}
_OPEN_RAW = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW", "PENDING_CANCEL", "ACCEPTED"})
_UNIFIED_STATUS = {
    "closed": VenueOrderStatus.FILLED,
    "canceled": VenueOrderStatus.CANCELED,
    "rejected": VenueOrderStatus.REJECTED,
    "expired": VenueOrderStatus.EXPIRED,
}


@dataclass(frozen=True)
class VenueConfig:
    """How to reach one venue. ``options`` are extra ccxt options, merged last."""

    name: str
    exchange_id: str
    base_url: str | None = None
    api_key: str | None = None
    secret: str | None = None
    timeout_ms: int = 5000
    options: dict = field(default_factory=dict)
    markets_max_age_s: float = 30 * 60  # reload markets when older than this
    # Only for venues whose ccxt ``editOrder`` is a true in-place amend that keeps the
    # filled quantity (never binance spot: its edit is cancelReplace, which ignores
    # what the old order filled). Off unless someone vouched for the venue.
    native_amend: bool = False

    def __repr__(self) -> str:  # never print credentials
        return (
            f"VenueConfig(name={self.name!r}, exchange_id={self.exchange_id!r}, "
            f"base_url={self.base_url!r}, api_key={'***' if self.api_key else None})"
        )


def _deep_merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _override_base_url(exchange: Any, base_url: str) -> None:
    base_url = base_url.rstrip("/")
    urls = dict(exchange.urls)
    if exchange.id in BINANCE_SPOT_IDS:
        urls["api"] = {key: base_url + path for key, path in BINANCE_SPOT_API_PATHS.items()}
    else:
        # Generic: keep each entry's path, swap scheme://host for the override.
        def swap(url: str) -> str:
            scheme, sep, rest = url.partition("://")
            if not sep:
                return url
            path = rest.partition("/")[2]
            return base_url + ("/" + path if path else "")

        api = urls.get("api")
        if isinstance(api, str):
            urls["api"] = swap(api)
        elif isinstance(api, Mapping):
            urls["api"] = {k: swap(v) if isinstance(v, str) else v for k, v in dict(api).items()}
    urls.pop("test", None)  # sandbox URLs are irrelevant and must not be switched to
    exchange.urls = urls


def build_exchange(
    config: VenueConfig, *, async_client: bool = False, streaming: bool = False
) -> Any:
    """A configured ccxt exchange (sync by default, ``ccxt.async_support`` on request,
    ``ccxt.pro`` with ``streaming``: its WebSocket base follows a base URL override)."""
    if streaming:
        module = importlib.import_module("ccxt.pro")
    else:
        module = importlib.import_module("ccxt.async_support") if async_client else ccxt
    try:
        exchange_class = getattr(module, config.exchange_id)
    except AttributeError:
        raise ValueError(f"unknown ccxt exchange id {config.exchange_id!r}") from None
    exchange = exchange_class(
        {
            "apiKey": config.api_key or "",
            "secret": config.secret or "",
            "timeout": config.timeout_ms,
            "enableRateLimit": False,  # the OMS limiter is cluster-wide; see DESIGN 5
        }
    )
    options = dict(exchange.options)
    if config.exchange_id in BINANCE_SPOT_IDS:
        options = _deep_merge(options, BINANCE_SPOT_OPTIONS)
    else:
        options = _deep_merge(options, {"defaultType": "spot", "adjustForTimeDifference": False})
    exchange.options = _deep_merge(options, config.options)
    if config.base_url:
        _override_base_url(exchange, config.base_url)
        if streaming and config.exchange_id in BINANCE_SPOT_IDS:
            # the simulated exchange serves Binance's streams at /ws on its port
            ws_base = "ws" + config.base_url.rstrip("/").removeprefix("http")
            exchange.urls["api"]["ws"] = {"spot": ws_base + "/ws"}
    if config.exchange_id in BINANCE_SPOT_IDS and isinstance(exchange.exceptions, Mapping):
        # handle_errors applies exceptions['spot'] only for the real binance hosts.
        spot = exchange.exceptions.get("spot") or {}
        exceptions = dict(exchange.exceptions)
        for kind in ("exact", "broad"):
            exceptions[kind] = {**exceptions.get(kind, {}), **spot.get(kind, {})}
        exchange.exceptions = exceptions
    return exchange


# -- small converters ---------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (decimal.InvalidOperation, ValueError):
        return None


def _first_dec(*values: Any) -> Decimal | None:
    for value in values:
        result = _dec(value)
        if result is not None:
            return result
    return None


def _ts(ms: Any) -> datetime | None:
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _plain(value: Decimal) -> str:
    """Decimal as a plain string ccxt can parse (no exponent)."""
    return format(value, "f")


# -- the adapter --------------------------------------------------------------------


# What requests reads from the environment on every request (proxies, CA bundle, .netrc).
_REQUESTS_ENV = ("proxy", "requests_ca_bundle", "curl_ca_bundle", "netrc")


def _skip_empty_environment(exchange: Any) -> None:
    """requests looks for proxy, CA-bundle and .netrc settings in the environment on
    every request (about 0.2 ms, on the order path). When the process has none, stop
    it looking; with any, it keeps doing so (their behaviour is unchanged)."""
    session = getattr(exchange, "session", None)
    if session is None or not hasattr(session, "trust_env"):
        return
    names = [name.lower() for name in os.environ]
    if any(key in name for name in names for key in _REQUESTS_ENV):
        return
    if any(os.path.exists(os.path.expanduser(f"~/{f}")) for f in (".netrc", "_netrc")):
        return
    session.trust_env = False


class CcxtAdapter(VenueAdapter):
    """``VenueAdapter`` over one ccxt exchange instance. Blocking; one call at a time."""

    def __init__(
        self,
        config: VenueConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        exchange: Any = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._exchange = exchange if exchange is not None else build_exchange(config)
        self._binance = config.exchange_id in BINANCE_SPOT_IDS
        self._markets_loaded_at: float | None = None
        self._status: int | None = None
        self._headers: dict[str, str] = {}
        self._body: str | None = None
        self._last_headers: dict[str, str] = {}
        self._hook_responses()
        _skip_empty_environment(self._exchange)

    # ---- plumbing --------------------------------------------------------------------

    def _hook_responses(self) -> None:
        """Record status, headers and body of every HTTP answer (ccxt keeps no status)."""
        original = self._exchange.on_rest_response

        def on_rest_response(code, reason, url, method, headers, body, *rest):
            self._status = int(code) if code is not None else None
            self._headers = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
            self._last_headers = self._headers
            self._body = body
            return original(code, reason, url, method, headers, body, *rest)

        self._exchange.on_rest_response = on_rest_response

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one ccxt call: markets ready, our Decimal context untouched, errors mapped."""
        with self._lock, decimal.localcontext():
            # ccxt's decimal_to_precision changes the thread's decimal context (rounding,
            # traps) and never restores it: keep that away from the caller's arithmetic.
            self._status, self._headers, self._body = None, {}, None
            try:
                return fn(*args, **kwargs)
            except VenueError:
                raise
            except ccxt.BaseError as exc:
                raise self._map_error(exc) from exc
            except Exception as exc:  # never a rejection by guess
                raise VenueInDoubt(f"{self.name}: unexpected error: {exc!r}") from exc

    def _ensure_markets(self) -> None:
        with self._lock:
            now = self._clock()
            fresh = (
                self._markets_loaded_at is not None
                and now - self._markets_loaded_at < self.config.markets_max_age_s
            )
            if fresh:
                return
            if self._markets_loaded_at is None:
                self._call(self._exchange.load_markets, True)
                self._markets_loaded_at = self._clock()
                return
            try:
                self._call(self._exchange.load_markets, True)
                self._markets_loaded_at = self._clock()
            except VenueError as exc:
                # Stale markets beat no trading; retry on the next call.
                log.warning("%s: market refresh failed, keeping old markets: %s", self.name, exc)

    def refresh_markets(self) -> None:
        """Reload the venue's markets now."""
        with self._lock:
            self._call(self._exchange.load_markets, True)
            self._markets_loaded_at = self._clock()

    def _venue(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._ensure_markets()
        return self._call(fn, *args, **kwargs)

    def last_used_weight(self) -> int | None:
        """``X-MBX-USED-WEIGHT-1M`` (or ``X-MBX-USED-WEIGHT``) of the last answer."""
        for key in ("x-mbx-used-weight-1m", "x-mbx-used-weight"):
            value = self._last_headers.get(key)
            if value is not None:
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    def last_response_headers(self) -> dict[str, str]:
        return dict(self._last_headers)

    @property
    def exchange(self) -> Any:
        return self._exchange

    # ---- error mapping ---------------------------------------------------------------

    def _venue_error_body(self) -> tuple[str | None, str | None]:
        """(code, message) from the last answer's JSON body, if it has them."""
        if not self._body:
            return None, None
        try:
            data = json.loads(self._body)
        except (TypeError, ValueError):
            return None, None
        if not isinstance(data, dict):
            return None, None
        code = data.get("code", data.get("error_code"))
        msg = data.get("msg", data.get("message"))
        if msg is None and isinstance(data.get("error"), str):
            msg = data["error"]
        return _str(code), _str(msg)

    def _retry_after(self) -> float | None:
        value = self._headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return None

    def _map_error(self, exc: ccxt.BaseError) -> VenueError:
        status = self._status
        venue_code, venue_msg = self._venue_error_body()
        reason = venue_msg or str(exc) or type(exc).__name__
        code = venue_code or (str(status) if status else type(exc).__name__)
        if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
            return VenueRateLimited(
                f"{self.name}: rate limited: {reason}",
                retry_after=self._retry_after(),
                banned=status == 418,
                code=code,
            )
        if isinstance(exc, ccxt.OrderNotFound):
            return VenueOrderNotFound(reason, code=code)
        if isinstance(exc, ccxt.InvalidNonce):
            return VenueInDoubt(f"{self.name}: clock or nonce rejected: {reason}", code=code)
        if isinstance(exc, ccxt.NetworkError | ccxt.OperationFailed):
            return VenueInDoubt(f"{self.name}: {type(exc).__name__}: {reason}", code=code)
        if isinstance(
            exc,
            ccxt.InsufficientFunds
            | ccxt.InvalidOrder
            | ccxt.BadRequest
            | ccxt.AuthenticationError
            | ccxt.OperationRejected
            | ccxt.ArgumentsRequired
            | ccxt.NotSupported
            | ccxt.InvalidAddress,
        ):
            return VenueRejected(reason, code=code)
        if (
            isinstance(exc, ccxt.ExchangeError)
            and status is not None
            and 400 <= status < 500
            and venue_code is not None
        ):
            return VenueRejected(reason, code=code)
        return VenueInDoubt(f"{self.name}: {type(exc).__name__}: {reason}", code=code)

    # ---- conversions -----------------------------------------------------------------

    def _status_of(self, order: Mapping, filled: Decimal) -> VenueOrderStatus:
        info = order.get("info") or {}
        raw = info.get("status") if self._binance and isinstance(info, Mapping) else None
        if raw in _BINANCE_STATUS:
            return _BINANCE_STATUS[raw]
        unified = order.get("status")
        if raw in _OPEN_RAW or unified in (None, "open", "canceling"):
            # An accepted order with no reported status is working.
            return VenueOrderStatus.PARTIALLY_FILLED if filled > 0 else VenueOrderStatus.NEW
        if unified in _UNIFIED_STATUS:
            return _UNIFIED_STATUS[unified]
        raise VenueInDoubt(f"{self.name}: unknown order status {unified!r} / {raw!r}")

    def _to_trade(self, trade: Mapping) -> VenueTrade:
        # binance's raw strings avoid float noise; other venues' raw shapes are unknown
        info = trade.get("info") if self._binance else None
        info = info if isinstance(info, Mapping) else {}
        fee = trade.get("fee") or {}
        raw_side = None
        if "isBuyer" in info:
            raw_side = "buy" if info["isBuyer"] in (True, "true") else "sell"
        maker = trade.get("takerOrMaker")
        if "isMaker" in info:
            is_maker = info["isMaker"] in (True, "true")
        else:
            is_maker = None if maker is None else maker == "maker"
        return VenueTrade(
            trade_id=str(info.get("id", trade.get("id"))),
            venue_order_id=str(info.get("orderId", trade.get("order"))),
            symbol=trade.get("symbol"),
            side=raw_side or trade.get("side"),
            quantity=_first_dec(info.get("qty"), trade.get("amount")) or Decimal(0),
            price=_first_dec(info.get("price"), trade.get("price")) or Decimal(0),
            fee=_first_dec(info.get("commission"), fee.get("cost")) or Decimal(0),
            fee_currency=fee.get("currency") or _str(info.get("commissionAsset")),
            is_maker=is_maker,
            timestamp=_ts(info.get("time", trade.get("timestamp"))),
            client_order_id=_str(trade.get("clientOrderId")),
        )

    def _to_order(self, order: Mapping, *, symbol: str | None = None) -> VenueOrder:
        info = order.get("info") if self._binance else None
        info = info if isinstance(info, Mapping) else {}
        filled = _first_dec(info.get("executedQty"), order.get("filled")) or Decimal(0)
        quantity = _first_dec(info.get("origQty"), order.get("amount")) or Decimal(0)
        price = _first_dec(info.get("price"), order.get("price"))
        order_type = (order.get("type") or _str(info.get("type")) or "").lower()
        if price is not None and price == 0:
            price = None  # binance reports "0.00000000" for market orders
        average = None
        quote = _dec(info.get("cummulativeQuoteQty"))
        if quote is not None and filled > 0:
            average = quote / filled
        if average is None:
            average = _dec(order.get("average"))
        venue_order_id = _str(info.get("orderId")) or _str(order.get("id")) or ""
        # A binance cancel answer's clientOrderId is the cancel's own id; the order's
        # is origClientOrderId.
        client_order_id = _str(info.get("origClientOrderId")) or _str(order.get("clientOrderId"))
        side = (order.get("side") or _str(info.get("side")) or "").lower()
        unified_symbol = order.get("symbol") or symbol or ""
        timestamp = _ts(order.get("timestamp"))
        trades: list[VenueTrade] = []
        fills = info.get("fills") if self._binance else None
        if isinstance(fills, list) and fills:
            # The placement answer's fills: the order was the taker by construction.
            for fill in fills:
                trades.append(
                    VenueTrade(
                        trade_id=str(fill.get("tradeId")),
                        venue_order_id=venue_order_id,
                        symbol=unified_symbol,
                        side=side,
                        quantity=_dec(fill.get("qty")) or Decimal(0),
                        price=_dec(fill.get("price")) or Decimal(0),
                        fee=_dec(fill.get("commission")) or Decimal(0),
                        fee_currency=_str(fill.get("commissionAsset")),
                        is_maker=False,
                        timestamp=_ts(info.get("transactTime")) or timestamp,
                        client_order_id=client_order_id,
                    )
                )
        elif not self._binance:
            for trade in order.get("trades") or ():
                if trade.get("id") is not None:
                    trades.append(self._to_trade({**trade, "symbol": unified_symbol}))
        return VenueOrder(
            venue_order_id=venue_order_id,
            client_order_id=client_order_id,
            symbol=unified_symbol,
            side=side,
            type=order_type,
            status=self._status_of(order, filled),
            quantity=quantity,
            price=price,
            filled_quantity=filled,
            average_price=average,
            timestamp=timestamp,
            trades=tuple(trades),
        )

    # ---- the contract ----------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        has = self._exchange.has
        try:
            self._ensure_markets()
            markets = tuple(
                sorted(s for s, m in (self._exchange.markets or {}).items() if m.get("spot"))
            )
        except VenueError:
            markets = ()  # capabilities must not fail because the venue is down
        return Capabilities(
            native_amend=self._native_amend(),
            cancel_all=bool(has.get("cancelAllOrders")),
            order_stream=False,
            # elsewhere fetch_order falls back to scanning open/closed order lists
            fetch_by_client_order_id=self._binance or bool(has.get("fetchOrderWithClientOrderId")),
            markets=markets,
        )

    def _native_amend(self) -> bool:
        return (
            self.config.native_amend
            and not self._binance
            and bool(self._exchange.has.get("editOrder"))
        )

    def _client_id_param(self, client_order_id: str) -> dict[str, str]:
        return (
            {"newClientOrderId": client_order_id}
            if self._binance
            else {"clientOrderId": client_order_id}
        )

    def _checked(self, symbol: str, value: Decimal, kind: str) -> str:
        """Refuse (not round) a price/quantity off the market's tick/step."""
        text = _plain(value)
        try:
            if kind == "price":
                adjusted = self._exchange.price_to_precision(symbol, text)
            else:
                adjusted = self._exchange.amount_to_precision(symbol, text)
        except ccxt.BaseError as exc:
            raise self._map_error(exc) from exc
        if Decimal(str(adjusted)) != value:
            raise VenueRejected(
                f"{kind} {text} is not a multiple of the {symbol} "
                f"{'tick' if kind == 'price' else 'lot'} size (nearest: {adjusted})",
                code="PRECISION",
            )
        return text

    def submit_order(self, request: OrderRequest) -> VenueOrder:
        self._ensure_markets()
        order_type = request.type.lower()
        params: dict[str, Any] = self._client_id_param(request.client_order_id)
        with self._lock, decimal.localcontext():
            if request.symbol not in (self._exchange.markets or {}):
                raise VenueRejected(f"unknown symbol {request.symbol}", code="BAD_SYMBOL")
            amount = self._checked(request.symbol, request.quantity, "amount")
            price = None
            if order_type == "limit":
                if request.price is None:
                    raise VenueRejected("limit order without a price", code="PRICE")
                price = self._checked(request.symbol, request.price, "price")
                params["timeInForce"] = request.time_in_force
            elif order_type == "market":
                if request.time_in_force not in ("GTC", "IOC"):
                    raise VenueRejected("market orders are IOC", code="TIF")
            else:
                raise VenueRejected(f"unsupported order type {request.type}", code="TYPE")
        try:
            order = self._call(
                self._exchange.create_order,
                request.symbol,
                order_type,
                request.side.lower(),
                float(amount),
                None if price is None else float(price),
                params,
            )
        except VenueRejected as exc:
            if not self._is_duplicate(exc):
                raise
            # The venue already holds an order with our client order id: an earlier
            # send went through. Report that order, do not reject the one we hold.
            try:
                return self.fetch_order(
                    symbol=request.symbol, client_order_id=request.client_order_id
                )
            except VenueOrderNotFound:
                raise exc from None
        return self._to_order(order, symbol=request.symbol)

    @staticmethod
    def _is_duplicate(exc: VenueRejected) -> bool:
        cause = exc.__cause__
        return isinstance(cause, ccxt.DuplicateOrderId) or "duplicate order" in exc.reason.lower()

    def fetch_order(self, *, symbol: str, client_order_id: str) -> VenueOrder:
        if not client_order_id:
            raise VenueOrderNotFound("no client order id given", code="NO_ID")
        if self._binance or self._exchange.has.get("fetchOrderWithClientOrderId"):
            # ccxt's fetch_order_with_client_order_id calls fetch_order("", symbol,
            # {"clientOrderId": id}); binance.fetch_order then ignores the empty id and
            # sends origClientOrderId instead of orderId (read in binance.py).
            order = self._venue(
                self._exchange.fetch_order_with_client_order_id, client_order_id, symbol
            )
            return self._to_order(order, symbol=symbol)
        return self._find_by_client_id(symbol, client_order_id)

    def _find_by_client_id(self, symbol: str, client_order_id: str) -> VenueOrder:
        """For venues that cannot look an order up by client id: scan their lists."""
        listings = (
            ("fetchOpenOrders", self._exchange.fetch_open_orders),
            ("fetchClosedOrders", self._exchange.fetch_closed_orders),
            ("fetchCanceledOrders", self._exchange.fetch_canceled_orders),
        )
        for capability, fetch in listings:
            if not self._exchange.has.get(capability):
                continue
            for order in self._venue(fetch, symbol):
                if order.get("clientOrderId") == client_order_id:
                    return self._to_order(order, symbol=symbol)
        raise VenueOrderNotFound(f"{self.name}: no order with client id {client_order_id}")

    def cancel_order(
        self, *, symbol: str, client_order_id: str, venue_order_id: str | None = None
    ) -> VenueOrder:
        if venue_order_id:
            order = self._venue(self._exchange.cancel_order, venue_order_id, symbol)
        elif client_order_id:
            # binance.cancel_order sends origClientOrderId when given clientOrderId.
            order = self._venue(
                self._exchange.cancel_order_with_client_order_id, client_order_id, symbol
            )
        else:
            raise VenueOrderNotFound("neither client nor venue order id given", code="NO_ID")
        result = self._to_order(order, symbol=symbol)
        if result.client_order_id is None and client_order_id:
            result = replace(result, client_order_id=client_order_id)
        return result

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
        if self._native_amend():
            return self._native_edit(
                symbol=symbol,
                client_order_id=client_order_id,
                venue_order_id=venue_order_id,
                side=side,
                quantity=quantity,
                price=price,
            )
        # Race-safe cancel-replace: the new order only exists once the old one can no
        # longer fill, and it is sized by what the old one filled before the cancel.
        try:
            old = self.cancel_order(
                symbol=symbol, client_order_id=client_order_id, venue_order_id=venue_order_id
            )
        except VenueOrderNotFound:
            # binance answers -2011 for an order that is no longer open: say why.
            old = self.fetch_order(symbol=symbol, client_order_id=client_order_id)
            if old.status == VenueOrderStatus.FILLED:
                raise VenueRejected("order already filled", code="FILLED") from None
            raise VenueRejected(
                f"order is no longer open ({old.status})", code=str(old.status)
            ) from None
        if not self._binance:
            # Only binance's cancel answer is known to carry the executed quantity.
            old = self.fetch_order(symbol=symbol, client_order_id=client_order_id)
        if old.status == VenueOrderStatus.FILLED:
            raise VenueRejected("order already filled", code="FILLED")
        remaining = quantity - old.filled_quantity
        if remaining <= 0:
            raise VenueRejected(
                f"old order canceled after filling {old.filled_quantity}; new quantity "
                f"{quantity} leaves nothing to place",
                code="NOTHING_LEFT",
            )
        return self.submit_order(
            OrderRequest(
                client_order_id=new_client_order_id,
                symbol=symbol,
                side=side,
                type="limit",
                quantity=remaining,
                price=price if price is not None else old.price,
                time_in_force="GTC",
            )
        )

    def _native_edit(
        self,
        *,
        symbol: str,
        client_order_id: str,
        venue_order_id: str | None,
        side: str,
        quantity: Decimal,
        price: Decimal | None,
    ) -> VenueOrder:
        if not venue_order_id:
            venue_order_id = self.fetch_order(
                symbol=symbol, client_order_id=client_order_id
            ).venue_order_id
        order = self._venue(
            self._exchange.edit_order,
            venue_order_id,
            symbol,
            "limit",
            side.lower(),
            float(quantity),
            None if price is None else float(price),
        )
        return self._to_order(order, symbol=symbol)

    def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        orders = self._venue(self._exchange.fetch_open_orders, symbol)
        return [self._to_order(o, symbol=symbol) for o in orders]

    def fetch_trades(
        self, *, symbol: str, since_ms: int | None = None, limit: int = 500
    ) -> list[VenueTrade]:
        """Our trades at or after ``since_ms``, oldest first. Binance answers at most
        ``limit`` trades (and at most 24 h after ``since_ms``): advance the cursor and
        call again until the answer is empty."""
        raw = self._venue(self._exchange.fetch_my_trades, symbol, since_ms, limit)
        trades = [self._to_trade(t) for t in raw]
        if since_ms is not None:
            cursor = _ts(since_ms)
            trades = [t for t in trades if t.timestamp is None or t.timestamp >= cursor]
        trades.sort(key=lambda t: (t.timestamp or datetime.min.replace(tzinfo=UTC), t.trade_id))
        return trades

    def fetch_order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        book = self._venue(self._exchange.fetch_order_book, symbol, depth)

        def levels(rows: Any) -> tuple[BookLevel, ...]:
            return tuple(
                BookLevel(price=Decimal(str(row[0])), quantity=Decimal(str(row[1])))
                for row in (rows or [])[:depth]
            )

        return OrderBook(
            symbol=symbol,
            bids=levels(book.get("bids")),
            asks=levels(book.get("asks")),
            timestamp=_ts(book.get("timestamp")),
        )

    def fetch_balances(self) -> dict[str, Balance]:
        """Balances with a non-zero total, by asset."""
        raw = self._venue(self._exchange.fetch_balance)
        result: dict[str, Balance] = {}
        info = raw.get("info") if isinstance(raw.get("info"), Mapping) else {}
        rows = info.get("balances") if self._binance else None
        if isinstance(rows, list):
            for row in rows:
                free, used = _dec(row.get("free")) or Decimal(0), _dec(row.get("locked"))
                used = used or Decimal(0)
                if free or used:
                    asset = self._exchange.safe_currency_code(row.get("asset"))
                    result[asset] = Balance(asset=asset, free=free, used=used)
            return result
        free_map, used_map = raw.get("free") or {}, raw.get("used") or {}
        for asset in set(free_map) | set(used_map):
            free = _dec(free_map.get(asset)) or Decimal(0)
            used = _dec(used_map.get(asset)) or Decimal(0)
            if free or used:
                result[asset] = Balance(asset=asset, free=free, used=used)
        return result

    def cancel_all(self, symbol: str) -> list[VenueOrder]:
        if not self._exchange.has.get("cancelAllOrders"):
            return super().cancel_all(symbol)
        try:
            orders = self._venue(self._exchange.cancel_all_orders, symbol)
        except VenueOrderNotFound:
            return []  # binance answers -2011 when nothing was open
        out = []
        for order in orders or []:
            if isinstance(order, Mapping) and (order.get("id") or order.get("info")):
                out.append(self._to_order(order, symbol=symbol))
        return out

    def close(self) -> None:
        with self._lock:
            session = getattr(self._exchange, "session", None)
            if session is not None and hasattr(session, "close"):
                session.close()
