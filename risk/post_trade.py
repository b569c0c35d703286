"""Post-trade risk: after every fill, a breached max position or daily loss moves the
scope to the limit's breach action (REDUCING or HALTED) and says why. A listener of the
execution engine's events (``settings.OMS_EVENT_LISTENERS``), run in the fill's
transaction."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from orders.events import FillBooked
from risk import checks
from risk import engine as risk_engine
from risk.checks import LimitKind
from risk.engine import account_pnl, applicable_limits
from risk.models import AccountRisk, BreachAction, StateScope
from risk.services import SYSTEM, trading_state_set

log = logging.getLogger(__name__)


# --- Post-trade -------------------------------------------------------------------------


def on_event(event: Any) -> None:
    """The post-trade check, a listener of ``omsweb.events``: every booked fill."""
    if isinstance(event, FillBooked):
        after_fill(position=event.position, fill=event.fill)


def after_fill(*, position: Any, fill: Any) -> None:
    """After a fill updated ``position`` (in the fill's transaction): escalate the scope
    of a breached max position (account + symbol) or daily loss (account) to the
    limit's breach action. A failure here is logged and never loses the fill."""
    try:
        with transaction.atomic():
            _after_fill(position, fill)
    except Exception:
        log.exception("risk: post-trade check after fill %s failed", getattr(fill, "pk", None))


def _after_fill(position: Any, fill: Any) -> None:
    account, instrument = fill.account, fill.instrument
    resolved = applicable_limits(
        account_id=account.pk,
        account_code=account.code,
        instrument_id=instrument.pk,
        symbol=instrument.symbol,
    )
    pos_limit = resolved.get(LimitKind.MAX_POSITION.value)
    breach = checks.position_breach(position.quantity, pos_limit.value if pos_limit else None)
    if breach is not None and pos_limit is not None:
        trading_state_set(
            actor=SYSTEM,
            scope=StateScope.ACCOUNT,
            account=account,
            instrument=instrument,
            state=pos_limit.breach_action or BreachAction.REDUCING,
            reason=f"after fill {fill.venue_trade_id}: {breach.message} ({pos_limit.scope_label})",
            escalate_only=True,
            detail={"breach": breach.as_dict(), "fill_id": fill.pk},
        )
    loss_limit = resolved.get(LimitKind.MAX_DAILY_LOSS.value)
    if loss_limit is None:
        return
    pnl = account_pnl(account.pk)
    start = (
        AccountRisk.objects.filter(account_id=account.pk, pnl_day=risk_engine.clock().date())
        .values_list("day_start_pnl", flat=True)
        .first()
    )
    breach = checks.daily_loss_breach(pnl - (start if start is not None else pnl), loss_limit.value)
    if breach is not None:
        trading_state_set(
            actor=SYSTEM,
            scope=StateScope.ACCOUNT,
            account=account,
            state=loss_limit.breach_action or BreachAction.REDUCING,
            reason=f"after fill {fill.venue_trade_id}: {breach.message} ({loss_limit.scope_label})",
            escalate_only=True,
            detail={"breach": breach.as_dict(), "fill_id": fill.pk},
        )
