"""Risk services: the only code that changes limits and trading states.

Every change records who, when and why (``RiskLimitChange`` / ``TradingStateChange``).
Only the ``risk`` and ``admin`` roles (and the operator's ``oms kill`` console, and the
post-trade engine escalating on a breach) may change them.

Engaging a trading state takes the per-account risk rows (``AccountRisk``) of every
account in scope ``FOR UPDATE`` before it writes the state: a pre-trade check holds its
account's row until its order commits, so each order is either committed before the
engagement (and canceled by the sweep, which runs after it) or evaluated after it (and
denied). HALTED enqueues the cancel sweep (``oms.urgent.risk_kill_sweep``) on commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from omsweb import alerts, realtime
from omsweb.roles import ADMIN, RISK, TRADER, has_role
from orders.domain.errors import OmsError
from orders.models import Account, Instrument
from risk.checks import BREACH_KINDS, INTEGER_KINDS, SEVERITY, LimitKind
from risk.models import (
    AccountRisk,
    BreachAction,
    RiskLimit,
    RiskLimitChange,
    Source,
    State,
    StateScope,
    TradingState,
    TradingStateChange,
)
from venues.models import Venue

log = logging.getLogger(__name__)

KILL_SWEEP_TASK = "oms.urgent.risk_kill_sweep"
AUDIT_STREAM = "risk"  # limits and trading states (the kill switch), in the audit trail
MAX_VALUE = Decimal(10) ** 18


# --- Errors (rendered by omsweb/errors.py like every OmsError) -------------------------


class RiskValidationError(OmsError):
    code = "VALIDATION_ERROR"


class RiskPermissionDenied(OmsError):
    status_code = 403
    code = "PERMISSION_DENIED"


class LimitExists(OmsError):
    status_code = 409
    code = "LIMIT_EXISTS"


# --- Who acts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who changes a control: a user (with the role that entitles them) or the system."""

    user: Any
    name: str
    role: str  # admin | risk | trader | system | operator
    source: str  # Source value

    @classmethod
    def of(cls, user: Any, source: str) -> Actor:
        if has_role(user, ADMIN):
            role = ADMIN
        elif has_role(user, RISK):
            role = RISK
        elif has_role(user, TRADER):
            role = TRADER
        else:
            role = ""
        return cls(user=user, name=user.get_username(), role=role, source=source)

    @property
    def may_change_controls(self) -> bool:
        return self.role in (ADMIN, RISK, "system", "operator")


SYSTEM = Actor(user=None, name="risk-engine", role="system", source=Source.AUTO)


def operator(name: str, source: str = Source.CLI) -> Actor:
    """The console (``oms kill``, set-up): whoever can run it on the server operates it."""
    return Actor(user=None, name=name, role="operator", source=source)


def _require_controller(actor: Actor, what: str) -> None:
    if not actor.may_change_controls:
        raise RiskPermissionDenied(f"only the risk and admin roles may change {what}")


def _require_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise RiskValidationError("give a reason for the change", field="reason")
    if len(text) > 1000:
        raise RiskValidationError("reason: at most 1000 characters", field="reason")
    return text


def _user(actor: Actor) -> Any:
    return actor.user if getattr(actor.user, "pk", None) else None


# --- Limits -----------------------------------------------------------------------------


def _check_value(kind: str, value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise RiskValidationError("value must be a decimal number", field="value") from None
    if not number.is_finite():
        raise RiskValidationError("value must be a finite number", field="value")
    if number < 0:
        raise RiskValidationError(f"{kind} must not be negative", field="value")
    if number >= MAX_VALUE:
        raise RiskValidationError("value is too large", field="value")
    if kind in INTEGER_KINDS and number != number.to_integral_value():
        raise RiskValidationError(f"{kind} must be a whole number", field="value")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -12:
        raise RiskValidationError("value: at most 12 decimal places", field="value")
    return number


def _check_kind(kind: str) -> str:
    if kind not in {k.value for k in LimitKind}:
        raise RiskValidationError(
            f"unknown limit kind {kind!r}; one of {', '.join(k.value for k in LimitKind)}",
            field="kind",
        )
    return kind


def _check_breach_action(kind: str, action: str | None) -> str:
    action = action or ""
    if action not in BreachAction.values:
        raise RiskValidationError(
            "breach_action must be REDUCING, HALTED or empty", field="breach_action"
        )
    if action and kind not in BREACH_KINDS:
        raise RiskValidationError(
            f"breach_action applies to {' and '.join(sorted(BREACH_KINDS))} only",
            field="breach_action",
        )
    return action


def _limit_audit(
    limit: RiskLimit,
    *,
    actor: Actor,
    action: str,
    reason: str,
    old_value: Decimal | None = None,
    old_breach: str = "",
    deleted: bool = False,
) -> RiskLimitChange:
    change = RiskLimitChange.objects.create(
        limit=None if deleted else limit,
        action=action,
        kind=limit.kind,
        scope=limit.scope,
        account_code=limit.account.code if limit.account_id else "",
        symbol=limit.instrument.symbol if limit.instrument_id else "",
        old_value=old_value,
        new_value=None if deleted else limit.value,
        old_breach_action=old_breach,
        new_breach_action="" if deleted else limit.breach_action,
        reason=reason,
        changed_by=_user(actor),
        changed_by_name=actor.name,
        source=actor.source,
    )
    audit.record(
        AUDIT_STREAM,
        f"limit.{action}",
        actor.name,
        {
            "limit": limit.pk,
            "kind": change.kind,
            "scope": change.scope,
            "account": change.account_code,
            "symbol": change.symbol,
            "old_value": old_value,
            "new_value": change.new_value,
            "old_breach_action": old_breach,
            "new_breach_action": change.new_breach_action,
            "reason": reason,
            "role": actor.role,
            "source": actor.source,
            "change": change.pk,
        },
    )
    return change


def limit_create(
    *,
    actor: Actor,
    kind: str,
    value: Any,
    reason: str,
    account: Account | None = None,
    instrument: Instrument | None = None,
    breach_action: str | None = "",
) -> RiskLimit:
    """Set a limit at a scope (no account and no instrument: global). 409 if that scope
    already has a limit of that kind: change it with ``limit_update``."""
    _require_controller(actor, "limits")
    kind = _check_kind(kind)
    number = _check_value(kind, value)
    action = _check_breach_action(kind, breach_action)
    reason = _require_reason(reason)
    try:
        with transaction.atomic():
            limit = RiskLimit.objects.create(
                account=account,
                instrument=instrument,
                kind=kind,
                value=number,
                breach_action=action,
                reason=reason,
                updated_by=_user(actor),
                updated_by_name=actor.name,
            )
            _limit_audit(limit, actor=actor, action="created", reason=reason)
    except IntegrityError:
        existing = RiskLimit.objects.filter(
            kind=kind, account=account, instrument=instrument
        ).first()
        raise LimitExists(
            f"{kind} is already set for this scope"
            + (f" (limit {existing.pk}); change it with PATCH" if existing else ""),
            field="kind",
            limit_id=existing.pk if existing else None,
        ) from None
    return limit


def limit_update(
    *,
    actor: Actor,
    limit_id: int,
    reason: str,
    value: Any = None,
    breach_action: str | None = None,
) -> RiskLimit:
    """Change a limit's value and/or breach action."""
    _require_controller(actor, "limits")
    reason = _require_reason(reason)
    with transaction.atomic():
        limit = (
            RiskLimit.objects.select_for_update(of=("self",))
            .select_related("account", "instrument")
            .get(pk=limit_id)
        )
        old_value, old_breach = limit.value, limit.breach_action
        fields = ["reason", "updated_by", "updated_by_name", "updated_at"]
        if value is not None:
            limit.value = _check_value(limit.kind, value)
            fields.append("value")
        if breach_action is not None:
            limit.breach_action = _check_breach_action(limit.kind, breach_action)
            fields.append("breach_action")
        if value is None and breach_action is None:
            raise RiskValidationError("give a new value or breach_action", field="value")
        limit.reason = reason
        limit.updated_by = _user(actor)
        limit.updated_by_name = actor.name
        limit.save(update_fields=fields)
        _limit_audit(
            limit,
            actor=actor,
            action="updated",
            reason=reason,
            old_value=old_value,
            old_breach=old_breach,
        )
    return limit


def limit_delete(*, actor: Actor, limit_id: int, reason: str) -> None:
    """Remove a limit: the next less specific one applies, or none (fail closed)."""
    _require_controller(actor, "limits")
    reason = _require_reason(reason)
    with transaction.atomic():
        limit = (
            RiskLimit.objects.select_for_update(of=("self",))
            .select_related("account", "instrument")
            .get(pk=limit_id)
        )
        _limit_audit(
            limit,
            actor=actor,
            action="deleted",
            reason=reason,
            old_value=limit.value,
            old_breach=limit.breach_action,
            deleted=True,
        )
        limit.delete()


# --- Trading states ---------------------------------------------------------------------


@dataclass(frozen=True)
class StateChange:
    trading_state: TradingState
    change: TradingStateChange | None  # None: nothing changed (escalate_only, same or lower)


def ensure_account_rows(account_ids: list[int] | None = None) -> None:
    """Create the per-account risk rows that do not exist yet (idempotent)."""
    ids = (
        account_ids
        if account_ids is not None
        else list(Account.objects.values_list("pk", flat=True))
    )
    have = set(AccountRisk.objects.filter(account_id__in=ids).values_list("account_id", flat=True))
    missing = [AccountRisk(account_id=i) for i in ids if i not in have]
    if missing:
        AccountRisk.objects.bulk_create(missing, ignore_conflicts=True)


def _lock_accounts(account: Account | None) -> None:
    """Serialize with in-flight pre-trade checks of every account in scope."""
    ids = [account.pk] if account is not None else None
    ensure_account_rows(ids)
    qs = AccountRisk.objects.select_for_update().order_by("account_id")
    if ids is not None:
        qs = qs.filter(account_id__in=ids)
    list(qs.values_list("account_id", flat=True))


def _state_filter(
    scope: str, venue: Venue | None, account: Account | None, instrument: Instrument | None
) -> dict[str, Any]:
    return {
        "scope": scope,
        "venue": venue,
        "account": account,
        "instrument": instrument,
    }


def validate_scope(
    scope: str,
    *,
    venue: Venue | None = None,
    account: Account | None = None,
    instrument: Instrument | None = None,
) -> None:
    """A trading-state scope names exactly what it needs (400 naming the field)."""
    if scope not in StateScope.values:
        raise RiskValidationError(
            f"scope must be one of {', '.join(StateScope.values)}", field="scope"
        )
    need = {
        StateScope.GLOBAL: (False, False, False),
        StateScope.VENUE: (True, False, False),
        StateScope.ACCOUNT: (False, True, None),  # instrument optional
        StateScope.SYMBOL: (False, False, True),
    }[StateScope(scope)]
    for given, needed, name in (
        (venue, need[0], "venue"),
        (account, need[1], "account"),
        (instrument, need[2], "symbol"),
    ):
        if needed is None:
            continue
        if needed and given is None:
            raise RiskValidationError(f"scope {scope} needs a target ({name})", field="target")
        if not needed and given is not None:
            field = "symbol" if name == "symbol" and scope != StateScope.SYMBOL else "target"
            raise RiskValidationError(f"scope {scope} takes no {name}", field=field)


def trading_state_set(
    *,
    actor: Actor,
    scope: str,
    state: str,
    reason: str,
    venue: Venue | None = None,
    account: Account | None = None,
    instrument: Instrument | None = None,
    escalate_only: bool = False,
    detail: dict[str, Any] | None = None,
) -> StateChange:
    """Set the trading state of a scope: ACTIVE (release), REDUCING or HALTED (engage).

    HALTED stops new orders in scope as soon as this commits, and enqueues the sweep
    that cancels every working order in scope on the urgent queue. ``escalate_only``
    (post-trade breaches) never lowers a state nor rewrites an equal one.
    """
    _require_controller(actor, "trading state")
    if state not in State.values:
        raise RiskValidationError("state must be ACTIVE, REDUCING or HALTED", field="state")
    validate_scope(scope, venue=venue, account=account, instrument=instrument)
    reason = _require_reason(reason)
    with transaction.atomic():
        _lock_accounts(account if scope == StateScope.ACCOUNT else None)
        where = _state_filter(scope, venue, account, instrument)
        row = TradingState.objects.select_for_update(of=("self",)).filter(**where).first()
        if row is None:
            try:
                with transaction.atomic():
                    row = TradingState.objects.create(**where, state=State.ACTIVE)
            except IntegrityError:
                row = TradingState.objects.select_for_update(of=("self",)).get(**where)
        old = row.state
        if escalate_only and SEVERITY[state] <= SEVERITY[old]:
            return StateChange(trading_state=row, change=None)
        row.state = state
        row.reason = reason
        row.changed_by = _user(actor)
        row.changed_by_name = actor.name
        row.changed_by_role = actor.role
        row.source = actor.source
        row.save()
        change = TradingStateChange.objects.create(
            trading_state=row,
            scope=scope,
            target=row.target or "",
            symbol=row.symbol or "",
            old_state=old,
            new_state=state,
            reason=reason,
            changed_by=_user(actor),
            changed_by_name=actor.name,
            changed_by_role=actor.role,
            source=actor.source,
            detail=detail or {},
        )
        audit.record(
            AUDIT_STREAM,
            "trading_state.release" if state == State.ACTIVE else "trading_state.engage",
            actor.name,
            {
                "scope": scope,
                "target": change.target,
                "symbol": change.symbol,
                "old_state": old,
                "new_state": state,
                "reason": reason,
                "role": actor.role,
                "source": actor.source,
                "detail": change.detail,
                "change": change.pk,
                "trading_state": row.pk,
            },
        )
        log.warning(
            "trading state %s: %s -> %s by %s (%s): %s",
            row.label, old, state, actor.name, actor.source, reason,
        )  # fmt: skip
        realtime.publish_on_commit(
            "risk.state",
            account_id=account.pk if account is not None else None,
            **state_to_dict(row),
        )
        if SEVERITY[state] > SEVERITY[old]:  # engaged (or escalated): an alert once committed
            fields = {"scope": row.label, "state": state, "by": actor.name, "reason": reason}
            transaction.on_commit(lambda: alerts.alert(alerts.KILL_SWITCH_ENGAGED, **fields))
        if state == State.HALTED:
            change_id = change.pk
            transaction.on_commit(lambda: _enqueue_sweep(change_id))
    return StateChange(trading_state=row, change=change)


def _enqueue_sweep(change_id: int) -> None:
    from omsweb.celery import app

    try:
        app.send_task(KILL_SWEEP_TASK, args=(change_id,))
    except Exception:  # broker down: say so loudly; engaging again re-sends the sweep
        log.exception("kill switch: enqueue of the cancel sweep for change %s failed", change_id)


def state_to_dict(row: TradingState) -> dict[str, Any]:
    return {
        "id": row.pk,
        "scope": row.scope,
        "target": row.target,
        "symbol": row.symbol,
        "state": row.state,
        "reason": row.reason,
        "changed_by": row.changed_by_name,
        "changed_by_role": row.changed_by_role,
        "source": row.source,
        "changed_at": row.changed_at.isoformat() if row.changed_at else None,
    }


# --- The trading day --------------------------------------------------------------------


def trading_day(now: Any = None) -> date:
    """The P&L day: UTC calendar day."""
    return (now or timezone.now()).astimezone(UTC).date()


def roll_trading_day() -> int:
    """Start today's P&L for every account whose day has not started yet; return how many.
    Idempotent (run every minute by beat, and lazily by the pre-trade check)."""
    from risk.engine import account_pnl

    ensure_account_rows()
    today = trading_day()
    rolled = 0
    for account_id in AccountRisk.objects.exclude(pnl_day=today).values_list(
        "account_id", flat=True
    ):
        with transaction.atomic():
            row = AccountRisk.objects.select_for_update().get(account_id=account_id)
            if row.pnl_day == today:
                continue
            row.day_start_pnl = account_pnl(account_id)
            row.pnl_day = today
            row.save(update_fields=["day_start_pnl", "pnl_day", "updated_at"])
            rolled += 1
    return rolled
