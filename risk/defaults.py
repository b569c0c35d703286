"""The global limits the demo (and every fresh install through ``oms up``) starts with.

Risk is fail closed: without a limit of every kind an order is denied, so a fresh OMS
needs these to trade at all. They are global rows, recorded in the audit trail as set
by ``setup``; a risk officer tightens them per account and symbol in the admin or the
API. Existing rows are never overwritten.
"""

from __future__ import annotations

from decimal import Decimal

from risk.checks import LimitKind

# kind: (value, breach action)
DEFAULT_LIMITS: dict[str, tuple[str, str]] = {
    LimitKind.MAX_ORDER_QUANTITY: ("100", ""),  # base units
    LimitKind.MAX_ORDER_NOTIONAL: ("2000000", ""),  # USDT
    LimitKind.MAX_POSITION: ("200", "REDUCING"),  # base units, per symbol
    LimitKind.MAX_GROSS_EXPOSURE: ("10000000", ""),  # USDT, per account
    LimitKind.MAX_OPEN_ORDERS: ("200", ""),  # per account
    LimitKind.MAX_ORDERS_PER_SECOND: ("50", ""),  # per account
    LimitKind.MAX_DUPLICATE_ORDERS: ("3", ""),  # identical orders within the window
    LimitKind.DUPLICATE_WINDOW_S: ("2", ""),
    LimitKind.PRICE_COLLAR_PCT: ("15", ""),
    LimitKind.MAX_REFERENCE_AGE_S: ("10", ""),
    LimitKind.MAX_DAILY_LOSS: ("250000", "HALTED"),  # USDT
}


def ensure_default_limits() -> int:
    """Create the missing global limits and the accounts' risk rows; return how many
    limits were created."""
    from risk import services
    from risk.models import RiskLimit, Source

    have = set(
        RiskLimit.objects.filter(account__isnull=True, instrument__isnull=True).values_list(
            "kind", flat=True
        )
    )
    actor = services.operator("setup", Source.SYSTEM)
    created = 0
    for kind, (value, action) in DEFAULT_LIMITS.items():
        if kind in have:
            continue
        services.limit_create(
            actor=actor,
            kind=kind,
            value=Decimal(value),
            breach_action=action,
            reason="default limit of a fresh install",
        )
        created += 1
    services.ensure_account_rows()
    return created
