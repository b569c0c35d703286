"""Roles: ``trader`` (only the accounts they belong to), ``risk`` (limits, kill switch,
sees everything) and ``admin``. A role is a Django group of that name; superusers are
admins."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

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


def sees_all_accounts(user: Any) -> bool:
    return has_role(user, RISK, ADMIN)


def visible_accounts(user: Any) -> QuerySet:
    from orders.models import Account

    if sees_all_accounts(user):
        return Account.objects.all()
    return Account.objects.filter(members=user)


def may_trade_sql(account_alias: str, user_param: str = "user") -> str:
    """The same rule as ``visible_accounts`` as a SQL condition on the account row
    ``account_alias``, for prebuilt statements (``%(user)s`` is the user's id, NULL for
    the OMS itself, which may trade every account)."""
    from django.contrib.auth.models import Group, User

    from omsweb import sqlrows as sr
    from orders.models import Account

    members = Account.members.through
    user_groups = User.groups.through
    u = f"%({user_param})s"
    return (
        f"({u} IS NULL"
        f" OR EXISTS (SELECT 1 FROM {sr.table(User)} su WHERE su.{sr.pk(User)} = {u}"
        f" AND su.{sr.column(User, 'is_superuser')})"
        f" OR EXISTS (SELECT 1 FROM {sr.table(members)} m"
        f" WHERE m.{sr.column(members, 'account')} = {account_alias}.{sr.pk(Account)}"
        f" AND m.{sr.column(members, 'user')} = {u})"
        f" OR EXISTS (SELECT 1 FROM {sr.table(user_groups)} ug"
        f" JOIN {sr.table(Group)} g ON g.{sr.pk(Group)} = ug.{sr.column(user_groups, 'group')}"
        f" WHERE ug.{sr.column(user_groups, 'user')} = {u}"
        f" AND g.{sr.column(Group, 'name')} IN ('{RISK}', '{ADMIN}')))"
    )
