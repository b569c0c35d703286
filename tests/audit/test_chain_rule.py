"""The hash-chain rule (audit/chain.py): pure, and the same in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from django.db import connection

from audit.chain import GENESIS, canonical, jsonable, link, link_sql


def test_canonical_is_the_same_for_a_record_in_memory_and_read_back_from_jsonb():
    # jsonb writes 1e20 as 100000000000000000000 and keeps 1.50's scale; keys come back sorted
    assert canonical({"b": 1e20, "a": 1.0}) == canonical({"a": 1, "b": 100000000000000000000})
    assert canonical({"x": [1.5, True, None, "s"]}) == '{"x":["1.5",true,null,"s"]}'
    paris = timezone(timedelta(hours=1))
    at = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=paris)
    assert canonical({"at": at}) == canonical({"at": at.astimezone(UTC)})
    assert jsonable({"q": D("1.50"), 2: (D("1E+2"),)}) == {"q": "1.5", "2": ["100"]}


def test_changing_any_part_changes_the_hash():
    base = link(GENESIS, "1", canonical({"a": 1}))
    assert base != link(GENESIS, "2", canonical({"a": 1}))
    assert base != link(GENESIS, "1", canonical({"a": 2}))
    assert base != link("1" * 64, "1", canonical({"a": 1}))
    assert len(base) == 64 and int(base, 16) >= 0


@pytest.mark.django_db
def test_link_sql_computes_link_on_the_server():
    body = canonical({"kind": "OrderSubmitted", "payload": {"é": "ü|x"}, "n": 1.25})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {link_sql('CAST(%s AS text)', 'CAST(%s + 1 AS text)', 'CAST(%s AS text)')}",
            ["ab" * 32, 6, body],
        )
        (on_server,) = cursor.fetchone()
    assert on_server == link("ab" * 32, "7", body)
