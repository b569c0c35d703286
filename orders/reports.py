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

from venues.base import VenueTrade


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
