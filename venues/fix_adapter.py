"""The ``fix`` venue driver: the adapter contract over FIX 4.4.

The FIX session itself lives in ``oms fixvenue --venue NAME`` (``venues/fix_session.py``,
one process per venue: QuickFIX runs on threads of its own and is kept out of the
workers). Workers, the venue stream and reconciliation reach it through Redis, which
every OMS process already uses:

* a request is pushed on ``oms:fixvenue:<name>:requests`` as JSON ``{"id", "op",
  "args", "deadline"}``; the session process sends the FIX messages, collects the
  venue's answers and pushes ``{"ok": true, "messages": [{"type", "fields"}, ...]}`` (or
  ``{"ok": false, "error", "text"}``) on ``oms:fixvenue:<name>:reply:<id>``;
* a request still queued at its ``deadline`` is dropped unsent, so once the adapter has
  given up waiting, nothing it asked for can reach the venue later;
* ``oms:fixvenue:<name>:session`` exists (with a short expiry the session process keeps
  refreshing) while the session is logged on: without it a request is not queued at all
  (``VenueUnavailable``: nothing was sent);
* every fill the venue reports (ExecutionReport 150=F, resends included) is recorded by
  the session process per symbol (``...:trades:<symbol>``, by time) and per order
  (``...:fills:<OrderID>``, by ExecID: a resent report overwrites itself), which is what
  ``fetch_trades`` and the orders' trades are read from.

Mapping of the contract:

=================  =====================================================================
submit_order       NewOrderSingle (D), then OrderStatusRequest (H) for the same ClOrdID:
                   the venue answers H after it processed D, so the answer holds the
                   order's state with the fills reported before it; an ExecutionReport
                   Rejected is ``VenueRejected`` with the venue's Text (58)
cancel_order       OrderCancelRequest (F); OrderCancelReject (9) with CxlRejReason 1
                   (unknown) or 0 (too late: already done) is ``VenueOrderNotFound``
                   (the pipeline then asks for the order's state), others ``VenueRejected``
amend_order        OrderCancelReplaceRequest (G) then H for the new ClOrdID (native
                   amend: the venue cancels and re-places in one step)
fetch_order        OrderStatusRequest (H); OrdStatus 8 with OrdRejReason 5 (unknown
                   order) is ``VenueOrderNotFound``
fetch_open_orders  OrderMassStatusRequest (AF), type 7 (all) or 1 (one symbol)
fetch_trades       the recorded fills
order book,        the venue's REST market data when the row has a ``base_url`` (a ccxt
balances           adapter, as for a sim venue); without one, ``VenueRejected``
=================  =====================================================================

No answer within ``timeout_s`` is ``VenueInDoubt``: the pipeline resolves the order with
an OrderStatusRequest (``fetch_order``), never by sending it again blindly.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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
    VenueRejected,
    VenueTrade,
    VenueUnavailable,
)

REQUEST_TIMEOUT_S = 5.0
SESSION_TTL_S = 5  # the session key's expiry; refreshed every second while logged on
FILLS_TTL_S = 7 * 24 * 3600

SIDE = {"buy": "1", "sell": "2"}
SIDE_NAME = {"1": "buy", "2": "sell"}
ORD_TYPE = {"market": "1", "limit": "2"}
TIF = {"GTC": "1", "IOC": "3", "FOK": "4"}
STATUS = {
    "0": VenueOrderStatus.NEW,
    "1": VenueOrderStatus.PARTIALLY_FILLED,
    "2": VenueOrderStatus.FILLED,
    "4": VenueOrderStatus.CANCELED,
    "8": VenueOrderStatus.REJECTED,
    "C": VenueOrderStatus.EXPIRED,
    # pending states: still working as far as the contract goes
    "6": VenueOrderStatus.NEW,
    "A": VenueOrderStatus.NEW,
    "E": VenueOrderStatus.NEW,
}


class Keys:
    """The Redis keys of one FIX venue (shared with ``venues/fix_session.py``)."""

    def __init__(self, venue: str) -> None:
        base = f"oms:fixvenue:{venue}"
        self.requests = f"{base}:requests"
        self.session = f"{base}:session"
        self._base = base

    def reply(self, request_id: str) -> str:
        return f"{self._base}:reply:{request_id}"

    def trades(self, symbol: str) -> str:
        return f"{self._base}:trades:{symbol}"

    def fills(self, order_id: str) -> str:
        return f"{self._base}:fills:{order_id}"


def fix_time(ms: float | None = None) -> str:
    """UTCTimestamp with milliseconds (now when ``ms`` is None)."""
    moment = datetime.now(UTC) if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def parse_fix_time(raw: str | None) -> int | None:
    """Epoch ms of a UTCTimestamp (with or without milliseconds), None if absent/bad."""
    if not raw:
        return None
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            return int(datetime.strptime(raw, fmt).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            continue
    return None


def trade_record(fields: dict[str, str]) -> dict[str, Any]:
    """What is kept of a fill report (150=F): plain JSON values."""
    return {
        "trade_id": fields.get("17", ""),
        "order_id": fields.get("37", ""),
        "client_order_id": fields.get("11"),
        "symbol": fields.get("55", ""),
        "side": SIDE_NAME.get(fields.get("54", ""), "buy"),
        "quantity": fields.get("32", "0"),
        "price": fields.get("31", "0"),
        "fee": fields.get("12", "0"),
        "fee_currency": fields.get("479"),
        "is_maker": {"1": True, "2": False}.get(fields.get("851", "")),
        "ts": parse_fix_time(fields.get("60")) or int(time.time() * 1000),
    }


def _trade(record: dict[str, Any]) -> VenueTrade:
    return VenueTrade(
        trade_id=str(record["trade_id"]),
        venue_order_id=str(record["order_id"]),
        symbol=str(record["symbol"]),
        side=str(record["side"]),
        quantity=Decimal(record["quantity"]),
        price=Decimal(record["price"]),
        fee=Decimal(record.get("fee") or "0"),
        fee_currency=record.get("fee_currency"),
        is_maker=record.get("is_maker"),
        timestamp=datetime.fromtimestamp(int(record["ts"]) / 1000, UTC),
        client_order_id=record.get("client_order_id"),
    )


def _decimal(fields: dict[str, str], tag: str) -> Decimal | None:
    raw = fields.get(tag)
    return Decimal(raw) if raw not in (None, "") else None


class FixAdapter(VenueAdapter):
    """The adapter of a ``fix`` venue. ``market_data``: the venue's REST adapter (order
    books, balances, the markets it lists), or None."""

    def __init__(
        self,
        name: str,
        redis: Any,
        *,
        market_data: VenueAdapter | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.redis = redis
        self.keys = Keys(name)
        self.market_data = market_data
        self.timeout_s = timeout_s

    # ------------------------------------------------------------------ requests

    def _request(self, op: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Send one request through the session process and wait for its answer."""
        if not self.redis.exists(self.keys.session):
            raise VenueUnavailable(
                f"{self.name}: FIX session not logged on (is `oms fixvenue --venue "
                f"{self.name}` running?); not sent",
                code="FIX_SESSION_DOWN",
            )
        request_id = secrets.token_hex(8)
        deadline = time.time() + self.timeout_s
        request = {"id": request_id, "op": op, "args": args, "deadline": deadline}
        self.redis.lpush(self.keys.requests, json.dumps(request))
        answer = self.redis.brpop([self.keys.reply(request_id)], timeout=self.timeout_s + 0.5)
        if answer is None:
            raise VenueInDoubt(f"{self.name}: no FIX answer to {op} within {self.timeout_s:g}s")
        reply = json.loads(answer[1])
        if not reply.get("ok"):
            text = str(reply.get("text") or reply.get("error") or "failed")
            if reply.get("error") == "not_logged_on":
                raise VenueUnavailable(f"{self.name}: {text}; not sent", code="FIX_SESSION_DOWN")
            raise VenueInDoubt(f"{self.name}: {text}")
        return list(reply.get("messages") or [])

    def _fills(self, order_ids: list[str]) -> dict[str, tuple[VenueTrade, ...]]:
        if not order_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for order_id in order_ids:
            pipe.hvals(self.keys.fills(order_id))
        out = {}
        for order_id, values in zip(order_ids, pipe.execute(), strict=True):
            trades = sorted((_trade(json.loads(v)) for v in values), key=_trade_order)
            out[order_id] = tuple(trades)
        return out

    def _order(self, fields: dict[str, str], trades: tuple[VenueTrade, ...] = ()) -> VenueOrder:
        filled = _decimal(fields, "14") or Decimal(0)
        average = _decimal(fields, "6")
        return VenueOrder(
            venue_order_id=fields.get("37", ""),
            client_order_id=fields.get("11"),
            symbol=fields.get("55", ""),
            side=SIDE_NAME.get(fields.get("54", ""), "buy"),
            type="market" if fields.get("40") == "1" else "limit",
            status=STATUS.get(fields.get("39", ""), VenueOrderStatus.NEW),
            quantity=_decimal(fields, "38") or filled + (_decimal(fields, "151") or Decimal(0)),
            price=_decimal(fields, "44"),
            filled_quantity=filled,
            average_price=average if average else None,
            timestamp=_when(fields),
            trades=trades,
        )

    def _with_fills(self, fields: dict[str, str]) -> VenueOrder:
        order_id = fields.get("37", "")
        return self._order(fields, self._fills([order_id]).get(order_id, ()))

    # ------------------------------------------------------------------ the contract

    def capabilities(self) -> Capabilities:
        markets = self.market_data.capabilities().markets if self.market_data else ()
        return Capabilities(
            native_amend=True,
            cancel_all=False,
            order_stream=False,
            fetch_by_client_order_id=True,
            markets=markets,
        )

    def submit_order(self, request: OrderRequest) -> VenueOrder:
        fields = {
            "11": request.client_order_id,
            "55": request.symbol,
            "54": SIDE[request.side],
            "38": format(request.quantity, "f"),
            "40": ORD_TYPE[request.type],
            "59": TIF.get(request.time_in_force, "1"),
        }
        if request.type == "limit" and request.price is not None:
            fields["44"] = format(request.price, "f")
        messages = self._request("submit", {"fields": fields})
        return self._outcome(messages, request.client_order_id)

    def _outcome(self, messages: list[dict[str, Any]], cl_ord_id: str) -> VenueOrder:
        """A submit's or amend's answer: rejected, or the status report."""
        for message in messages:
            fields = message["fields"]
            if message["type"] == "8" and fields.get("150") == "8":
                raise VenueRejected(fields.get("58") or "rejected by the venue", code="REJECTED")
            if message["type"] == "9":
                text = fields.get("58") or "cancel/replace rejected"
                if fields.get("102") == "1":
                    raise VenueOrderNotFound(text)
                raise VenueRejected(text, code="CXL_REJ_" + fields.get("102", ""))
            if message["type"] == "j":
                raise VenueRejected(fields.get("58") or "business message reject")
        status = [m["fields"] for m in messages if m["fields"].get("150") == "I"]
        if not status or status[-1].get("39") == "8":
            raise VenueInDoubt(f"{self.name}: no status for {cl_ord_id} after sending it")
        return self._with_fills(status[-1])

    def cancel_order(
        self, *, symbol: str, client_order_id: str, venue_order_id: str | None = None
    ) -> VenueOrder:
        fields = {
            "11": f"x-{secrets.token_hex(8)}",
            "41": client_order_id,
            "55": symbol,
            "54": "1",  # required by FIX 4.4; the venue finds the order by its ids
            "38": "0",
        }
        if venue_order_id:
            fields["37"] = venue_order_id
        messages = self._request("cancel", {"fields": fields})
        for message in messages:
            answer = message["fields"]
            if message["type"] == "9":
                text = answer.get("58") or "cancel rejected"
                if answer.get("102") in ("0", "1"):  # too late / unknown: ask for its state
                    raise VenueOrderNotFound(text)
                raise VenueRejected(text, code="CXL_REJ_" + answer.get("102", ""))
            if message["type"] == "j":
                raise VenueRejected(answer.get("58") or "business message reject")
            if answer.get("150") == "4":
                return self._with_fills(answer)
        raise VenueInDoubt(f"{self.name}: no answer to the cancel of {client_order_id}")

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
        fields = {
            "11": new_client_order_id,
            "41": client_order_id,
            "55": symbol,
            "54": SIDE[side],
            "38": format(quantity, "f"),
            "40": "2",
        }
        if price is not None:
            fields["44"] = format(price, "f")
        if venue_order_id:
            fields["37"] = venue_order_id
        messages = self._request("amend", {"fields": fields})
        try:
            return self._outcome(messages, new_client_order_id)
        except VenueRejected as exc:
            if exc.code == "CXL_REJ_0" and "filled" in exc.reason:
                raise VenueRejected("order already filled", code="FILLED") from None
            raise

    def fetch_order(self, *, symbol: str, client_order_id: str) -> VenueOrder:
        fields = {"11": client_order_id, "55": symbol, "54": "1"}
        messages = self._request("status", {"fields": fields})
        reports = [m["fields"] for m in messages if m["fields"].get("150") == "I"]
        if not reports:
            raise VenueInDoubt(f"{self.name}: no status for {client_order_id}")
        if reports[-1].get("39") == "8" and reports[-1].get("103") == "5":
            raise VenueOrderNotFound(f"{self.name}: unknown order {client_order_id}")
        return self._with_fills(reports[-1])

    def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        fields = {"585": "1", "55": symbol} if symbol else {"585": "7"}
        messages = self._request("mass", {"fields": fields})
        reports = [
            m["fields"]
            for m in messages
            if m["fields"].get("150") == "I" and m["fields"].get("911") != "0"
        ]
        fills = self._fills([r.get("37", "") for r in reports])
        return [self._order(r, fills.get(r.get("37", ""), ())) for r in reports]

    def fetch_trades(
        self, *, symbol: str, since_ms: int | None = None, limit: int = 500
    ) -> list[VenueTrade]:
        raw = self.redis.zrangebyscore(
            self.keys.trades(symbol), since_ms if since_ms is not None else "-inf", "+inf",
            start=0, num=limit,
        )  # fmt: skip
        return [_trade(json.loads(r)) for r in raw]

    def fetch_order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        if self.market_data is None:
            raise VenueRejected(f"{self.name}: no market data (the venue row has no base_url)")
        return self.market_data.fetch_order_book(symbol, depth)

    def fetch_balances(self) -> dict[str, Balance]:
        if self.market_data is None:
            raise VenueRejected(f"{self.name}: no balances (the venue row has no base_url)")
        return self.market_data.fetch_balances()

    def close(self) -> None:
        if self.market_data is not None:
            self.market_data.close()


def _trade_order(trade: VenueTrade) -> tuple[datetime, str]:
    return (trade.timestamp or datetime.min.replace(tzinfo=UTC), trade.trade_id)


def _when(fields: dict[str, str]) -> datetime | None:
    ms = parse_fix_time(fields.get("60"))
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None
