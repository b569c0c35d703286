"""Model instances from hand-written, prebuilt SQL (for the few hot-path reads).

The ORM spends several times longer compiling a small query than PostgreSQL spends
answering it (a token lookup: 0.5 ms through the ORM, 0.09 ms as prebuilt SQL, on the
2-core machine). A ``Part`` is one model's columns in such a query's row, taken from
the model's metadata (a new column needs no change); ``hydrate`` turns a row into
instances with ``Model.from_db``, the ORM's own constructor, after each field's
database converters, as the ORM does.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models


@dataclass(frozen=True)
class Part:
    """One model's columns in a row."""

    model: type[models.Model]
    attnames: tuple[str, ...]
    columns: tuple[str, ...]
    converters: tuple[tuple[int, Callable[..., Any], models.Field], ...]
    pk_index: int

    def select(self, alias: str) -> str:
        """The part's columns for a SELECT list, qualified with ``alias``."""
        return ", ".join(f"{alias}.{q(c)}" for c in self.columns)


@functools.cache
def part(model: type[models.Model]) -> Part:
    fields = list(model._meta.concrete_fields)
    return Part(
        model=model,
        attnames=tuple(f.attname for f in fields),
        columns=tuple(f.column for f in fields),
        converters=tuple(
            (i, conv, f) for i, f in enumerate(fields) for conv in f.get_db_converters(connection)
        ),
        pk_index=next(i for i, f in enumerate(fields) if f.primary_key),
    )


def q(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: Any) -> str:
    return q(model._meta.db_table)


def column(model: Any, field: str) -> str:
    return q(model._meta.get_field(field).column)


def pk(model: Any) -> str:
    return q(model._meta.pk.column)


def hydrate(parts: Sequence[Part], row: Sequence[Any]) -> list[Any]:
    """``row`` (the parts' columns one after another) -> one instance per part, None
    for a part whose primary key is NULL (a LEFT JOIN that found nothing)."""
    out: list[Any] = []
    pos = 0
    for p in parts:
        values = list(row[pos : pos + len(p.columns)])
        pos += len(p.columns)
        if values[p.pk_index] is None:
            out.append(None)
            continue
        for i, conv, field in p.converters:
            values[i] = conv(values[i], field, connection)
        out.append(p.model.from_db(connection.alias, p.attnames, values))
    return out


def clone(instance: models.Model) -> Any:
    """A shallow copy of a model instance, as ``copy.copy`` makes it (its own
    ``_state`` and related-object cache, the related objects themselves shared), without
    the pickle protocol ``copy.copy`` goes through (several times slower)."""
    new = instance.__class__.__new__(instance.__class__)
    attrs = instance.__dict__.copy()
    state = attrs["_state"] = copy.copy(instance._state)
    state.fields_cache = state.fields_cache.copy()
    new.__dict__ = attrs
    return new
