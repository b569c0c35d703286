"""The hash chain: one rule for every tamper-evident stream (pure: no Django).

A record's hash is ``SHA-256(prev_hash | part | part ...)`` over UTF-8 text, hex; the
first record of a stream links to ``GENESIS``. The parts are the record's position in its
stream (a sequence number) and ``canonical(fields)``: its fields as sorted-key JSON, with
every number written as a normalised decimal string and times as UTC ISO-8601, so the
same record hashes the same whether it is in memory or read back from PostgreSQL (jsonb
turns ``1e20`` into ``100000000000000000000``; both are ``"100000000000000000000"`` here).

``link_sql`` is the same rule as a PostgreSQL expression, for the one writer's statements
that learn a record's position only inside the database (``tests/audit`` checks that the
two agree on the server).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64
SEPARATOR = "|"


def link(prev_hash: str, *parts: str) -> str:
    """The hash of a record whose predecessor's hash is ``prev_hash``."""
    text = SEPARATOR.join((prev_hash, *parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def link_sql(prev_hash: str, *parts: str) -> str:
    """``link`` as a PostgreSQL expression over SQL expressions of type text."""
    text = f" || '{SEPARATOR}' || ".join((prev_hash, *parts))
    return f"encode(sha256(convert_to({text}, 'UTF8')), 'hex')"


def jsonable(value: Any) -> Any:
    """``value`` as JSON stores it: Decimals as normalised strings, times as UTC
    ISO-8601, tuples as lists, keys as strings. What ``audit.record`` stores and hashes."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def canonical(fields: Mapping[str, Any]) -> str:
    """The canonical text of a record's fields (what ``link`` hashes)."""
    return json.dumps(
        _canonical_value(jsonable(fields)),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _canonical_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_value(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _number(Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
    raise TypeError(f"not JSON: {type(value).__name__}")


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")
