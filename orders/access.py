"""Who may see and trade which account: the one place that says so.

A ``trader`` trades and sees only the accounts they are a member of; ``risk`` and
``admin`` users (and superusers) see and trade every account; the OMS itself (no user:
the router's child orders) trades every account. ``visible_accounts`` is the rule for
ORM queries, ``may_trade_sql`` the same rule for prebuilt statements.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.db.models import QuerySet

from omsweb import sqlrows as sr
from omsweb.roles import ADMIN, RISK, has_role
from orders.models import Account


def sees_all_accounts(user: Any) -> bool:
    return has_role(user, RISK, ADMIN)


def visible_accounts(user: Any) -> QuerySet[Account]:
    if sees_all_accounts(user):
        return Account.objects.all()
    return Account.objects.filter(members=user)


def may_trade_sql(account_alias: str, user_param: str = "user") -> str:
    """The same rule as ``visible_accounts`` as a SQL condition on the account row
    ``account_alias``, for prebuilt statements (``%(user)s`` is the user's id, NULL for
    the OMS itself, which may trade every account)."""

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
