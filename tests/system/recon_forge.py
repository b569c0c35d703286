"""Forge the OMS side of a reconciliation mismatch in a stack's database, through the
execution engine and its one writer (never by saving a model), as a lost or wrong venue
report would: run in a subprocess with the stack's environment,
``python -m tests.system.recon_forge canceled ORDER_ID`` (the OMS says CANCELED) or
``python -m tests.system.recon_forge ghost-fill ORDER_ID`` (a fill of the whole order
under a trade id the venue never made: FILLED in the OMS)."""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal


def forge(what: str, order_id: int) -> str:
    from django.utils import timezone

    from orders import engine
    from orders.models import Order
    from orders.reports import ExecutionReport, ReportKind

    order = Order.objects.get(pk=order_id)
    if what == "canceled":
        report = ExecutionReport(kind=ReportKind.CANCELED, source="venue", reason="forged")
    elif what == "ghost-fill":
        report = ExecutionReport(
            kind=ReportKind.FILL,
            source="venue",
            venue_order_id=order.venue_order_id,
            trade_id=f"ghost-{order.pk}",
            quantity=order.quantity - order.filled_quantity,
            price=order.price or Decimal(1),
            executed_at=timezone.now() - timedelta(seconds=20),
        )
    else:
        raise SystemExit(f"unknown forgery {what!r}")
    (result,) = engine.process(order.pk, [report])
    return Order.objects.get(pk=order_id).status if result.applied else "not applied"


if __name__ == "__main__":
    import django

    django.setup()
    print(forge(sys.argv[1], int(sys.argv[2])))
