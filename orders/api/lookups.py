"""The rows an order request names, read in one statement.

A new order names an account (which the user must be allowed to trade), a symbol and
maybe a venue. Three ORM queries cost three round trips and, mostly, the ORM's query
compilation (the account's membership check with its ``Exists`` subqueries alone took
about 1 ms on the 2-core machine). Here one prebuilt statement reads all three, current
on every order: a disabled instrument or venue, or a trader taken off an account,
applies to the very next order (no cache to invalidate).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import connection

from omsweb import sqlrows as sr
from omsweb.roles import ADMIN, RISK
from orders.models import Account, Instrument
from venues.models import Venue


@dataclass(frozen=True)
class OrderRefs:
    account: Account | None  # None: no such account, or the user may not trade it
    instrument: Instrument | None
    venue: Venue | None  # None also when no venue was named


@functools.cache
def _parts() -> tuple[sr.Part, sr.Part, sr.Part]:
    return sr.part(Account), sr.part(Instrument), sr.part(Venue)


@functools.cache
def _sql() -> str:
    account, instrument, venue = _parts()
    members = Account.members.through
    user_groups = User.groups.through
    # A superuser, or a member of the risk or admin group, may trade every account
    # (as omsweb.roles.visible_accounts); a trader only those they are a member of.
    oversees = (
        f"EXISTS (SELECT 1 FROM {sr.table(user_groups)} ug "
        f"JOIN {sr.table(Group)} g ON g.{sr.pk(Group)} = ug.{sr.column(user_groups, 'group')} "
        f"WHERE ug.{sr.column(user_groups, 'user')} = %(user)s "
        f"AND g.{sr.column(Group, 'name')} IN ('{RISK}', '{ADMIN}'))"
    )
    member = (
        f"EXISTS (SELECT 1 FROM {sr.table(members)} m "
        f"WHERE m.{sr.column(members, 'account')} = a.{sr.pk(Account)} "
        f"AND m.{sr.column(members, 'user')} = %(user)s)"
    )
    return (
        f"SELECT {account.select('a')}, {instrument.select('i')}, {venue.select('v')} "
        f"FROM (SELECT 1) AS one "
        f"LEFT JOIN {sr.table(Account)} a ON a.{sr.column(Account, 'code')} = %(account)s "
        f"AND (%(superuser)s OR {member} OR {oversees}) "
        f"LEFT JOIN {sr.table(Instrument)} i ON i.{sr.column(Instrument, 'symbol')} = %(symbol)s "
        f"LEFT JOIN {sr.table(Venue)} v ON v.{sr.column(Venue, 'name')} = %(venue)s"
    )


def order_refs(user: Any, *, account: str, symbol: str, venue: str | None) -> OrderRefs:
    """The account ``account`` if ``user`` may trade it, the instrument ``symbol`` and the
    venue ``venue`` (when given), in one round trip; None for each one not found."""
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(),
            {
                "user": user.pk,
                "superuser": bool(user.is_superuser),
                "account": account,
                "symbol": symbol,
                "venue": venue,
            },
        )
        row = cursor.fetchone()
    acc, ins, ven = sr.hydrate(_parts(), row)
    return OrderRefs(account=acc, instrument=ins, venue=ven)
