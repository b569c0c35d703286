"""Admin pages show decimals as written (``0.001``), not padded to the column's scale.

Django's admin renders a ``DecimalField`` in lists and read-only details with all of
its decimal places: quantities and prices (12 places) read ``0.001000000000``. The
mixin ``PlainDecimals`` swaps each decimal field of the model, in the list columns and
in the read-only fields of the detail page, for a column that shows the value
normalised (trailing zeros dropped), sorting and labelled as the field itself; an
editable decimal's input starts from the normalised value too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.db import models

SUFFIX = "__plain"


def plain(value: Decimal | None) -> str:
    """``Decimal("0.001000000000")`` -> ``"0.001"``; ``Decimal("50000.00")`` -> ``"50000"``."""
    if value is None:
        return "-"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _column(field: models.DecimalField) -> Callable[[Any], str]:
    def show(obj: Any) -> str:
        return plain(getattr(obj, field.attname))

    show.short_description = field.verbose_name  # type: ignore[attr-defined]
    show.admin_order_field = field.name  # type: ignore[attr-defined]
    return show


class PlainDecimalInput(forms.DecimalField):
    """A form's decimal field whose input shows the stored value normalised."""

    def prepare_value(self, value: Any) -> Any:
        return plain(value) if isinstance(value, Decimal) else value


class PlainDecimals:
    """A ``ModelAdmin`` or inline mixin (first among the bases): decimal fields shown
    normalised in lists and read-only details."""

    model: type[models.Model]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decimals = {
            f.name for f in self.model._meta.get_fields() if isinstance(f, models.DecimalField)
        }
        for f in self.model._meta.get_fields():
            if isinstance(f, models.DecimalField):
                setattr(self, f.name + SUFFIX, _column(f))

    def _swap(self, names: Sequence[Any], only: set[str] | None = None) -> list[Any]:
        swap = self._decimals if only is None else self._decimals & only
        out: list[Any] = []
        for name in names:
            if isinstance(name, list | tuple):
                out.append(tuple(self._swap(name, only)))
            else:
                out.append(name + SUFFIX if isinstance(name, str) and name in swap else name)
        return out

    def formfield_for_dbfield(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if isinstance(db_field, models.DecimalField):
            kwargs.setdefault("form_class", PlainDecimalInput)
        return super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]

    def get_list_display(self, request: Any) -> Any:
        return self._swap(super().get_list_display(request))  # type: ignore[misc]

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        return self._swap(super().get_readonly_fields(request, obj))  # type: ignore[misc]

    def get_fieldsets(self, request: Any, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        # a view-only page shows every field read-only; otherwise only those listed
        view_only = obj is not None and not self.has_change_permission(request, obj)  # type: ignore[attr-defined]
        readonly = None if view_only else set(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return [
            (title, {**options, "fields": self._swap(options["fields"], readonly)})
            for title, options in fieldsets
        ]
