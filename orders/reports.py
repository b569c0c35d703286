"""Execution reports: what a venue (or reconciliation) says happened to an order.

Plain values that travel through the ``oms.reports`` queue as JSON and are applied by
``orders.engine.process``. Nothing here imports Django.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from orders.domain import lifecycle as lc
from venues.base import VenueOrder, VenueOrderStatus, VenueTrade


class ReportKind(StrEnum):
    SUBMITTED = "submitted"
    ACK = "ack"
    REJECT = "reject"
    FILL = "fill"
    CANCELED = "canceled"
    EXPIRED = "expired"
    CANCEL_REJECTED = "cancel_rejected"
    REPLACED = "replaced"
    REPLACE_REJECTED = "replace_rejected"


_DECIMALS = ("quantity", "price", "fee")


@dataclass(frozen=True)
class ExecutionReport:
    kind: ReportKind
    source: str = "venue"  # venue | worker | recon | stream
    venue_order_id: str | None = None
    client_order_id: str | None = None  # the venue-side client id (changes on amend)
    reason: str = ""
    trade_id: str | None = None
    quantity: Decimal | None = None  # fill quantity, or new total quantity when replaced
    price: Decimal | None = None
    fee: Decimal | None = None
    fee_currency: str | None = None
    is_maker: bool | None = None
    executed_at: datetime | None = None

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe dict (Decimals as strings, datetimes ISO), Nones dropped."""
        out: dict[str, Any] = {}
        for f in fields(self):  # flat values: no need for asdict()'s deep copy
            key, value = f.name, getattr(self, f.name)
            if value is None or value == "":
                continue
            if isinstance(value, Decimal):
                value = format(value, "f")
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, StrEnum):
                value = value.value
            out[key] = value
        return out

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> ExecutionReport:
        kwargs = dict(data)
        kwargs["kind"] = ReportKind(kwargs["kind"])
        for key in _DECIMALS:
            if kwargs.get(key) is not None:
                kwargs[key] = Decimal(str(kwargs[key]))
        if kwargs.get("executed_at"):
            kwargs["executed_at"] = datetime.fromisoformat(kwargs["executed_at"])
        return cls(**kwargs)


def fill_report(
    trade: VenueTrade, *, source: str, venue_order_id: str | None = None
) -> ExecutionReport:
    """The report of one venue trade (the one place a trade becomes a fill report)."""
    return ExecutionReport(
        kind=ReportKind.FILL,
        source=source,
        venue_order_id=trade.venue_order_id or venue_order_id,
        trade_id=trade.trade_id,
        quantity=trade.quantity,
        price=trade.price,
        fee=trade.fee,
        fee_currency=trade.fee_currency,
        is_maker=trade.is_maker,
        executed_at=trade.timestamp,
    )


def reports_from_answer(
    answer: VenueOrder, *, time_in_force: str, source: str
) -> list[ExecutionReport]:
    """The reports that bring an order to what the venue says of it, in applying order:
    ack, each trade, then a terminal cancel/expiry/rejection. The worker's answers and
    in-doubt resolution (``orders.venue_calls``) and the backtester use it alike."""
    if answer.status == VenueOrderStatus.REJECTED:
        return [ExecutionReport(kind=ReportKind.REJECT, source=source, reason="rejected by venue")]
    reports = [
        ExecutionReport(
            kind=ReportKind.ACK,
            source=source,
            venue_order_id=answer.venue_order_id,
            client_order_id=answer.client_order_id,
        )
    ]
    reports += [
        fill_report(trade, source=source, venue_order_id=answer.venue_order_id)
        for trade in answer.trades
    ]
    if answer.status == VenueOrderStatus.CANCELED:
        reports.append(ExecutionReport(kind=ReportKind.CANCELED, source=source))
    elif answer.status == VenueOrderStatus.EXPIRED:
        if time_in_force in ("IOC", "FOK"):
            # Binance says EXPIRED for an IOC/FOK remainder; FIX (and a desk) says the
            # remainder was canceled.
            reports.append(
                ExecutionReport(
                    kind=ReportKind.CANCELED,
                    source=source,
                    reason=f"{time_in_force} remainder canceled",
                )
            )
        else:
            reports.append(
                ExecutionReport(kind=ReportKind.EXPIRED, source=source, reason="expired")
            )
    return reports


def domain_event(
    report: ExecutionReport,
    *,
    quantity: Decimal,
    pending_quantity: Decimal | None = None,
    pending_price: Decimal | None = None,
) -> lc.OrderEvent:
    """The lifecycle event a report stands for (``quantity`` and the pending amend are
    the order's, for a REPLACED report that does not repeat them)."""
    kind = report.kind
    if kind == ReportKind.ACK:
        return lc.OrderAccepted(venue_order_id=report.venue_order_id)
    if kind == ReportKind.REJECT:
        return lc.OrderRejected(reason=report.reason or "rejected by venue")
    if kind == ReportKind.FILL:
        assert report.quantity is not None and report.price is not None and report.trade_id
        return lc.OrderFilled(
            trade_id=report.trade_id, quantity=report.quantity, price=report.price
        )
    if kind == ReportKind.CANCELED:
        return lc.OrderCanceled(reason=report.reason)
    if kind == ReportKind.EXPIRED:
        return lc.OrderExpired(reason=report.reason)
    if kind == ReportKind.CANCEL_REJECTED:
        return lc.OrderCancelRejected(reason=report.reason)
    if kind == ReportKind.REPLACED:
        return lc.OrderReplaced(
            quantity=report.quantity or pending_quantity or quantity,
            price=report.price if report.price is not None else pending_price,
            venue_order_id=report.venue_order_id,
        )
    if kind == ReportKind.REPLACE_REJECTED:
        return lc.OrderReplaceRejected(reason=report.reason)
    if kind == ReportKind.SUBMITTED:
        return lc.OrderSubmitted()
    raise ValueError(f"unknown report kind {kind!r}")
