"""Data the fault tests need in their stack's database, loaded in a subprocess
(``python -m tests.system.fault_setup``) with the stack's environment, like
``omsweb.stack.setup_database``.

* an admin user and its API token (reconciliation runs and unknown orders are for the
  risk and admin roles), printed as the last line;
* generous *account* limits for the per-account flow checks of the risk engine
  (orders per second, open orders, identical orders): the fault tests send bursts of
  200 orders as fast as the API takes them, which the fresh-install defaults of
  ``risk.defaults`` rightly deny. Every other risk check (collar, position, exposure,
  loss) stays at its default.
"""

from __future__ import annotations

import sys
from decimal import Decimal

GENEROUS = {
    "max_orders_per_second": Decimal("100000"),
    "max_open_orders": Decimal("100000"),
    "max_duplicate_orders": Decimal("100000"),
}


def generous_limits(accounts: tuple[str, ...] = ("DEMO", "HEDGE")) -> int:
    """Account-scoped limits above anything the fault tests send; returns how many were
    set. Does nothing when the risk engine (or one of these kinds) is not installed."""
    try:
        from risk import services
        from risk.checks import LimitKind
        from risk.models import RiskLimit, Source
    except ImportError:
        return 0
    from orders.models import Account

    kinds = {k.value for k in LimitKind}
    actor = services.operator("fault-tests", Source.SYSTEM)
    count = 0
    for code in accounts:
        account = Account.objects.get(code=code)
        for kind, value in GENEROUS.items():
            if kind not in kinds:
                continue
            row = RiskLimit.objects.filter(
                kind=kind, account=account, instrument__isnull=True
            ).first()
            reason = "fault tests: bursts of orders"
            if row is None:
                services.limit_create(
                    actor=actor, kind=kind, value=value, account=account, reason=reason
                )
            else:
                services.limit_update(actor=actor, limit_id=row.pk, value=value, reason=reason)
            count += 1
    return count


def admin_token(username: str = "fault-admin") -> str:
    from django.contrib.auth.models import Group, User

    from omsweb import api_tokens

    user, _ = User.objects.get_or_create(username=username, defaults={"is_superuser": True})
    user.groups.add(Group.objects.get(name="admin"))
    return api_tokens.issue(user=user, source="test")


if __name__ == "__main__":  # python -m tests.system.fault_setup
    import django

    django.setup()
    generous_limits()
    print(admin_token(*sys.argv[1:2]))
