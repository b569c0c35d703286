"""The simulated exchange's FIX 4.4 order desk: FIX requests against the same matching
engine and books as the REST side, and execution reports for every change of an order.

Pure module (no I/O, no QuickFIX): the simulator's server process owns the engine and
runs the desk in its event loop; the QuickFIX acceptor runs in a child process
(``venues/sim/fixserver.py``) that hands each application message over as
``{"type": "D", "fields": {tag: value}}`` and sends back the messages the desk returns,
in the same shape. Tags are FIX 4.4 numbers as strings.

One account trades over FIX (``default`` unless told). The desk reports every order of
that account, wherever it was entered (a drop copy): an order placed over REST, filled
by the market model or canceled over REST produces execution reports too, so orders
entered over FIX appear in the REST open orders and trades and vice versa.

What the desk answers:

* NewOrderSingle (D): New, then a Trade (150=F) per fill with LastQty/LastPx, CumQty,
  AvgPx, LeavesQty and the trade id as ExecID, then Canceled (an IOC/FOK/market
  remainder) when the order ends without filling; a refusal is an ExecutionReport
  Rejected with the engine's reason in Text (58).
* OrderCancelRequest (F): Canceled with the request's ClOrdID and the order's as
  OrigClOrdID; OrderCancelReject (9) with CxlRejReason 0 (too late: the order is
  done) or 1 (unknown order).
* OrderCancelReplaceRequest (G): cancel and re-place for what is left of the new
  OrderQty, one step in the engine (nothing can trade between the two): Replaced with
  the same OrderID and the chain's CumQty; OrderCancelReject when it cannot be done.
* OrderStatusRequest (H): an ExecutionReport 150=I echoing OrdStatusReqID (790); an
  unknown order is OrdStatus 8 with OrdRejReason 5 (Unknown order), as FIX 4.4 says.
* OrderMassStatusRequest (AF): one 150=I report per working order (MassStatusReqID,
  TotNumReports, LastRptRequested on the last); none working: a single report with
  TotNumReports 0 and OrderID ``NONE``.

OrderID (37) is the engine's order id of the first order of a replace chain, so it stays
the same across replaces, as FIX venues keep it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from venues.sim.engine import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    SELL,
    ZERO,
    EngineError,
    MatchingEngine,
    Order,
)

Message = dict[str, Any]  # {"type": msg type, "fields": {tag: value}}

SIDES = {"1": BUY, "2": SELL}
FIX_SIDE = {BUY: "1", SELL: "2"}
ORD_TYPES = {"1": MARKET, "2": LIMIT}
TIFS = {"0": GTC, "1": GTC, "3": IOC, "4": FOK}  # Day is good till cancel here
FIX_TIF = {GTC: "1", IOC: "3", FOK: "4"}
ORD_STATUS = {NEW: "0", PARTIALLY_FILLED: "1", FILLED: "2", CANCELED: "4", EXPIRED: "4"}
# ExecType 150 / OrdStatus 39 values used below
NEW_, TRADE, CANCELED_, REPLACED, REJECTED, STATUS = "0", "F", "4", "5", "8", "I"
UNKNOWN_ORDER = "5"  # OrdRejReason (103)
TOO_LATE, UNKNOWN = "0", "1"  # CxlRejReason (102)
HANDLED = ("D", "F", "G", "H", "AF")
_REJECT_IDS = itertools.count(1)  # ExecIDs of reports about no order


def fix_time(ms: int) -> str:
    """UTCTimestamp with milliseconds, e.g. ``20261206-13:14:15.123``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def _d(value: Decimal) -> str:
    text = format(value, "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


class FixRequestError(ValueError):
    """A request the desk cannot act on; ``text`` names the field."""

    def __init__(self, text: str, *, reason: str = "0") -> None:
        super().__init__(text)
        self.text = text
        self.reason = reason


@dataclass
class _Known:
    """What the desk last reported of one engine order."""

    cum: Decimal = ZERO
    cost: Decimal = ZERO
    status: str = NEW


@dataclass
class FixDesk:
    """FIX requests against ``engine()`` for ``account``; ``clock`` in epoch ms."""

    engine: Callable[[], MatchingEngine]
    clock: Callable[[], int]
    account: str = "default"
    # the next N NewOrderSingles are executed but their reports, and the answer to the
    # first OrderStatusRequest for them, are lost in transit: the client is in doubt
    # and must find out by asking again (POST /sim/fix {"silent_orders": N})
    silent_orders: int = 0
    _engine: MatchingEngine | None = None
    _known: dict[int, _Known] = field(default_factory=dict)
    _live: dict[int, Order] = field(default_factory=dict)
    _order_seen: dict[str, int] = field(default_factory=dict)  # symbol -> orders seen
    _trade_seen: dict[str, int] = field(default_factory=dict)  # symbol -> trades seen
    _root: dict[int, int] = field(default_factory=dict)  # engine order -> chain's first
    _next: dict[int, int] = field(default_factory=dict)  # replaced order -> replacement
    _carry: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)  # chain fills
    _exec_ids: itertools.count[int] = field(default_factory=itertools.count)
    _muted_status: set[str] = field(default_factory=set)  # ClOrdIDs of silent orders

    # ------------------------------------------------------------------ state

    def _sync_engine(self) -> MatchingEngine:
        engine = self.engine()
        if engine is not self._engine:  # first use, or the simulator was reset
            self._engine = engine
            self._known, self._live, self._root, self._next = {}, {}, {}, {}
            self._carry = {}
            self._order_seen = {
                s: len(engine.account_orders.get((self.account, s), [])) for s in engine.books
            }
            self._trade_seen = {
                s: len(engine.account_trades.get((self.account, s), [])) for s in engine.books
            }
            for order in engine.open_orders(self.account):
                self._known[order.order_id] = _Known(
                    order.executed_qty, order.cummulative_quote_qty, order.status
                )
                self._live[order.order_id] = order
        return engine

    def _exec_id(self, order: Order, kind: str) -> str:
        return f"{order.order_id}-{kind}-{next(self._exec_ids)}"

    def _latest(self, order: Order) -> Order:
        engine = self._sync_engine()
        while order.order_id in self._next:
            order = engine.orders[self._next[order.order_id]]
        return order

    # ------------------------------------------------------------------ reports

    def _report(
        self,
        order: Order,
        exec_type: str,
        *,
        status: str | None = None,
        cl_ord_id: str | None = None,
        orig_cl_ord_id: str | None = None,
        text: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Message:
        carry_qty, carry_cost = self._carry.get(order.order_id, (ZERO, ZERO))
        known = self._known.get(order.order_id)
        cum = (known.cum if known else order.executed_qty) + carry_qty
        cost = (known.cost if known else order.cummulative_quote_qty) + carry_cost
        quantity = order.orig_qty + carry_qty
        order_status = status or ORD_STATUS.get(order.status, "0")
        open_ = order_status in ("0", "1")
        inst = self._sync_engine().instruments[order.symbol]
        fields = {
            "37": str(self._root.get(order.order_id, order.order_id)),
            "11": cl_ord_id or order.client_order_id,
            "17": self._exec_id(order, exec_type),
            "150": exec_type,
            "39": order_status,
            "55": inst.unified,
            "54": FIX_SIDE[order.side],
            "38": _d(quantity),
            "40": "1" if order.type == MARKET else "2",
            "59": FIX_TIF.get(order.time_in_force, "1"),
            "151": _d(quantity - cum) if open_ else "0",
            "14": _d(cum),
            "6": _d(cost / cum) if cum else "0",
            "60": fix_time(self.clock()),
        }
        if order.type != MARKET:
            fields["44"] = _d(order.price)
        if orig_cl_ord_id:
            fields["41"] = orig_cl_ord_id
        if text:
            fields["58"] = text
        fields.update(extra or {})
        return {"type": "8", "fields": fields}

    def poll(self) -> list[Message]:
        """Reports for whatever changed in the account's orders since the last poll:
        new orders, each fill, cancels and expiries, in that order per symbol."""
        engine = self._sync_engine()
        out: list[Message] = []
        for symbol in engine.books:
            orders = engine.account_orders.get((self.account, symbol), [])
            for order in orders[self._order_seen.get(symbol, 0) :]:
                if order.order_id in self._known:
                    continue  # a replacement: reported as Replaced already
                self._known[order.order_id] = _Known()
                self._live[order.order_id] = order
                out.append(self._report(order, NEW_, status="0"))
            self._order_seen[symbol] = len(orders)
            trades = engine.account_trades.get((self.account, symbol), [])
            for trade in trades[self._trade_seen.get(symbol, 0) :]:
                traded = engine.orders.get(trade.order_id)
                if traded is None:
                    continue
                known = self._known.setdefault(trade.order_id, _Known())
                known.cum += trade.qty
                known.cost += trade.quote_qty
                filled = known.cum >= traded.orig_qty and traded.orig_qty > 0
                known.status = FILLED if filled else PARTIALLY_FILLED
                if filled:
                    self._live.pop(traded.order_id, None)
                out.append(
                    self._report(
                        traded,
                        TRADE,
                        status="2" if filled else "1",
                        extra={
                            "17": str(trade.id),
                            "32": _d(trade.qty),
                            "31": _d(trade.price),
                            "12": _d(trade.commission),
                            "13": "3",
                            "479": trade.commission_asset,
                            "851": "1" if trade.is_maker else "2",
                        },
                    )
                )
            self._trade_seen[symbol] = len(trades)
        for oid, order in list(self._live.items()):
            if order.is_open:
                continue
            self._live.pop(oid, None)
            known = self._known[oid]
            if order.status in (CANCELED, EXPIRED) and known.status not in (CANCELED, EXPIRED):
                known.status = order.status
                # an IOC/FOK/market remainder: Canceled, as FIX says (Binance says EXPIRED)
                text = (
                    "canceled" if order.status == CANCELED else f"{order.time_in_force} remainder"
                )
                out.append(self._report(order, CANCELED_, status="4", text=text))
        return out

    # ------------------------------------------------------------------ requests

    def handle(self, message: Message, *, poss_dup: bool = False) -> list[Message]:
        """The answer to one application message (reports of other changes that were
        pending are included first, so reports stay in the engine's order). A
        NewOrderSingle sent again (PossDupFlag, after a resend request) whose ClOrdID the
        desk already knows is not placed twice: its status is the answer."""
        out = self.poll()
        kind, fields = message["type"], message["fields"]
        try:
            if kind == "D" and poss_dup and self._find(fields, "11") is not None:
                return out + [self._status(fields)]
            if kind == "D":
                return out + self._new_order(fields)
            if kind == "F":
                return out + self._cancel(fields)
            if kind == "G":
                return out + self._replace(fields)
            if kind == "H":
                if fields.get("11") in self._muted_status:
                    self._muted_status.discard(fields["11"])
                    return out  # this answer is lost too
                return out + [self._status(fields)]
            if kind == "AF":
                return out + self._mass_status(fields)
        except FixRequestError as exc:
            return out + [_business_reject(kind, fields, exc.text)]
        return out + [_business_reject(kind, fields, f"unsupported message type {kind}")]

    def _symbol(self, fields: dict[str, str]) -> str:
        raw = fields.get("55")
        if not raw:
            raise FixRequestError("Symbol (55) is required")
        engine = self._sync_engine()
        for symbol, inst in engine.instruments.items():
            if raw.upper() in (inst.unified, symbol):
                return symbol
        raise FixRequestError(f"Symbol (55) {raw!r} is not traded here")

    def _new_order(self, fields: dict[str, str]) -> list[Message]:
        engine = self._sync_engine()
        cl_ord_id = fields.get("11", "")
        side = SIDES.get(fields.get("54", ""))
        try:
            symbol = self._symbol(fields)
            if side is None:
                raise FixRequestError(f"Side (54) {fields.get('54')!r}: 1 buy or 2 sell")
            order_type = ORD_TYPES.get(fields.get("40", ""))
            if order_type is None:
                raise FixRequestError(f"OrdType (40) {fields.get('40')!r}: 1 market or 2 limit")
            tif = TIFS.get(fields.get("59", "1"))
            if tif is None:
                raise FixRequestError(f"TimeInForce (59) {fields.get('59')!r}: 1, 3 or 4")
            price = _decimal(fields, "44") if order_type == LIMIT else None
            if order_type == LIMIT and price is None:
                raise FixRequestError("Price (44) is required on a limit order")
            if order_type == MARKET and "44" in fields:
                raise FixRequestError("Price (44) is not allowed on a market order")
            quantity = _decimal(fields, "38")
            if quantity is None:
                raise FixRequestError("OrderQty (38) is required")
            order = engine.place_order(
                self.account,
                symbol,
                side,
                order_type,
                quantity=quantity,
                price=price,
                time_in_force=tif if order_type == LIMIT else None,
                client_order_id=cl_ord_id,
            )
        except (FixRequestError, EngineError) as exc:
            text = exc.text if isinstance(exc, FixRequestError) else exc.msg
            reason = "6" if "Duplicate" in text else "0"
            return [_rejected(fields, text, reason)]
        reports = self.poll()
        if self.silent_orders > 0:
            self.silent_orders -= 1
            lost = str(order.order_id)
            self._muted_status.add(order.client_order_id)
            return [r for r in reports if r["fields"]["37"] != lost]
        return reports

    def _find(self, fields: dict[str, str], tag: str = "41") -> Order | None:
        engine = self._sync_engine()
        symbol = self._symbol(fields)
        order_id = fields.get("37")
        if order_id and order_id.isdigit() and int(order_id) in engine.orders:
            order = engine.orders[int(order_id)]
            if order.account == self.account and order.symbol == symbol:
                return self._latest(order)
        cl_ord_id = fields.get(tag)
        if not cl_ord_id:
            return None
        try:
            order = engine.get_order(self.account, symbol, orig_client_order_id=cl_ord_id)
        except EngineError:
            return None
        return self._latest(order)

    def _cancel(self, fields: dict[str, str]) -> list[Message]:
        order = self._find(fields)
        if order is None or not order.is_open:
            return [self._cancel_reject(fields, "1", order)]
        self._sync_engine().cancel_order(self.account, order.symbol, order_id=order.order_id)
        self._live.pop(order.order_id, None)
        self._known.setdefault(order.order_id, _Known()).status = CANCELED
        return [
            self._report(
                order,
                CANCELED_,
                status="4",
                cl_ord_id=fields.get("11"),
                orig_cl_ord_id=order.client_order_id,
            )
        ]

    def _replace(self, fields: dict[str, str]) -> list[Message]:
        engine = self._sync_engine()
        old = self._find(fields)
        if old is None or not old.is_open:
            return [self._cancel_reject(fields, "2", old)]
        carry_qty, carry_cost = self._carry.get(old.order_id, (ZERO, ZERO))
        filled = old.executed_qty + carry_qty
        quantity = _decimal(fields, "38")
        price = _decimal(fields, "44") if "44" in fields else old.price
        if quantity is None or quantity <= filled:
            text = f"OrderQty (38) {quantity} leaves nothing to place: {filled} filled"
            return [self._cancel_reject(fields, "2", old, text)]
        engine.cancel_order(self.account, old.symbol, order_id=old.order_id)
        try:
            new = engine.place_order(
                self.account,
                old.symbol,
                old.side,
                LIMIT,
                quantity=quantity - filled,
                price=price,
                time_in_force=GTC,
                client_order_id=fields.get("11"),
            )
        except EngineError as exc:
            # the old order is gone (canceled): reported by the next poll
            return [self._cancel_reject(fields, "2", old, f"replacement refused: {exc.msg}")]
        self._live.pop(old.order_id, None)
        self._known.setdefault(old.order_id, _Known()).status = CANCELED
        self._known[new.order_id] = _Known()
        self._root[new.order_id] = self._root.get(old.order_id, old.order_id)
        self._next[old.order_id] = new.order_id
        self._carry[new.order_id] = (filled, old.cummulative_quote_qty + carry_cost)
        self._live[new.order_id] = new
        report = self._report(
            new,
            REPLACED,
            status="0",
            cl_ord_id=new.client_order_id,
            orig_cl_ord_id=old.client_order_id,
        )
        if filled:
            report["fields"]["39"] = "1"
        return [report, *self.poll()]

    def _cancel_reject(
        self, fields: dict[str, str], response_to: str, order: Order | None, text: str = ""
    ) -> Message:
        """OrderCancelReject: CxlRejReason 1 for an unknown order, else 0 (too late)."""
        if order is None:
            order_id, status, reason, text = "NONE", "8", UNKNOWN, text or "unknown order"
        else:
            order_id = str(self._root.get(order.order_id, order.order_id))
            status, reason = ORD_STATUS.get(order.status, "8"), TOO_LATE
            text = text or f"too late: the order is {order.status.lower()}"
        return {
            "type": "9",
            "fields": {
                "37": order_id,
                "11": fields.get("11", ""),
                "41": fields.get("41", ""),
                "39": status,
                "434": response_to,
                "102": reason,
                "58": text,
            },
        }

    def _status(self, fields: dict[str, str]) -> Message:
        order = self._find(fields, "11")
        extra = {"790": fields["790"]} if "790" in fields else {}
        if order is None:
            return _unknown_status(fields, extra)
        return self._report(
            order, STATUS, status=self._status_of(order), cl_ord_id=order.client_order_id,
            extra=extra,
        )  # fmt: skip

    def _status_of(self, order: Order) -> str:
        if order.status == PARTIALLY_FILLED or (
            order.status == NEW and self._carry.get(order.order_id, (ZERO, ZERO))[0] > 0
        ):
            return "1"
        return ORD_STATUS.get(order.status, "0")

    def _mass_status(self, fields: dict[str, str]) -> list[Message]:
        engine = self._sync_engine()
        req_id = fields.get("584")
        if not req_id:
            raise FixRequestError("MassStatusReqID (584) is required")
        req_type = fields.get("585")
        if req_type not in ("1", "7"):
            raise FixRequestError(
                f"MassStatusReqType (585) {req_type!r}: 1 (one security) or 7 (all orders)"
            )
        symbol = self._symbol(fields) if req_type == "1" else None
        orders = engine.open_orders(self.account, symbol)
        if not orders:
            report = _unknown_status(fields, {"584": req_id, "911": "0", "912": "Y"})
            report["fields"]["58"] = "no working orders"
            return [report]
        out = []
        for n, order in enumerate(orders, 1):
            extra = {
                "584": req_id,
                "911": str(len(orders)),
                "912": "Y" if n == len(orders) else "N",
            }
            out.append(self._report(order, STATUS, status=self._status_of(order), extra=extra))
        return out


def _decimal(fields: dict[str, str], tag: str) -> Decimal | None:
    raw = fields.get(tag)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise FixRequestError(f"tag {tag}: {raw!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise FixRequestError(f"tag {tag}: {raw!r} must be positive")
    return value


def _rejected(fields: dict[str, str], text: str, reason: str = "0") -> Message:
    return {
        "type": "8",
        "fields": {
            "37": "NONE",
            "11": fields.get("11", ""),
            "17": f"rej-{fields.get('11', '')}-{next(_REJECT_IDS)}",
            "150": REJECTED,
            "39": REJECTED,
            "103": reason,
            "55": fields.get("55", "?"),
            "54": fields.get("54", "1"),
            "151": "0",
            "14": "0",
            "6": "0",
            "58": text,
        },
    }


def _unknown_status(fields: dict[str, str], extra: dict[str, str]) -> Message:
    report = _rejected(fields, "unknown order", UNKNOWN_ORDER)
    report["fields"]["150"] = STATUS
    report["fields"].update(extra)
    if not fields.get("11"):
        report["fields"].pop("11")
    return report


def _business_reject(kind: str, fields: dict[str, str], text: str) -> Message:
    ref = fields.get("11") or fields.get("584") or ""
    out = {"372": kind, "380": "0" if "unsupported" not in text else "3", "58": text}
    if ref:
        out["379"] = ref
    return {"type": "j", "fields": out}
