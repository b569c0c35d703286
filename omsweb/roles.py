"""Roles: ``trader`` (only the accounts they belong to), ``risk`` (limits, kill switch,
sees everything) and ``admin``. A role is a Django group of that name; superusers are
admins."""

from __future__ import annotations

from typing import Any

TRADER, RISK, ADMIN = "trader", "risk", "admin"


def has_role(user: Any, *roles: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    names = getattr(user, "_oms_roles", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
        user._oms_roles = names
    return bool(names & set(roles))
