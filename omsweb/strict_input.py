"""Input the API refuses before it reaches a query: a clear 400 naming the field, never
a 5xx (issue 12, item 4).

* ``omsweb.middleware.RejectNulInQuery``: a NUL character in a query parameter.
* ``JSONParser``: JSON nested too deep for the parser (Python's recursion limit).
* ``LimitOffsetPagination``: ``limit`` and ``offset`` are plain ASCII integers in range.
* ``ids``: a comma-separated list of row ids in a filter.
* ``plain_decimal``: a number (order quantities and prices, risk limit values) written
  plainly in ASCII.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from rest_framework import pagination, parsers
from rest_framework.exceptions import ParseError, ValidationError

MAX_PAGE = 1000
MAX_OFFSET = 10**9
MAX_ID = 2**63 - 1  # bigint
# A decimal as the API takes it (DESIGN: "decimals as strings"): ASCII digits and an
# optional fraction; no sign, exponent, spaces, underscores or other digits.
DECIMAL_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
MAX_DECIMAL_TEXT = 64
MAX_PLACES = 12  # the columns' scale (trailing zeros aside)
MAX_INTEGER_DIGITS = 18  # values below 10**18

# The same rules as JSON-schema patterns for the OpenAPI schema (omsweb/openapi.py): a
# string of DECIMAL_PATTERN, at most 64 characters, below 10**18, at most 12 places
# once trailing zeros are dropped; positive, or zero too. tests/omsweb/test_openapi.py
# checks that they take exactly what the fields take.
_FRACTION = r"\.[0-9]{1,12}0*"  # digits past the 12th are zeros
POSITIVE_DECIMAL_SCHEMA = {
    "type": "string",
    "maxLength": MAX_DECIMAL_TEXT,
    "pattern": (
        rf"^(?:0*[1-9][0-9]{{0,17}}(?:{_FRACTION})?"
        rf"|0+\.(?=[0-9]{{0,11}}[1-9])[0-9]{{1,12}}0*)\Z"
    ),
    "example": "0.5",
}
DECIMAL_SCHEMA = {
    "type": "string",
    "maxLength": MAX_DECIMAL_TEXT,
    "pattern": rf"^0*[0-9]{{1,18}}(?:{_FRACTION})?\Z",
    "example": "5",
}


def plain_decimal(data: Any) -> Decimal | None:
    """``data`` as a Decimal when it is a string written plainly in ASCII (``"0.5"``,
    ``"10"``) of at most 64 characters, else None. Python's ``Decimal`` alone takes
    ``"１"``, ``"١٢٣"``, ``"1_000"``, ``" 1 "`` and ``"1E+999999999"``; a JSON number
    is refused too (a float is not a decimal)."""
    if not isinstance(data, str) or len(data) > MAX_DECIMAL_TEXT:
        return None
    if not DECIMAL_PATTERN.fullmatch(data):
        return None
    return Decimal(data)


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deep") from None


def _integer(params: Any, name: str, *, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValidationError({name: [f"must be an integer from {low} to {high}"]})
    return int(raw)


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's, with ``limit`` (1 to 1000) and ``offset`` (0 to 10^9) checked: a value
    out of range or not an integer is a 400 naming it, not a silent default."""

    max_limit = MAX_PAGE

    def get_limit(self, request: Any) -> int | None:
        limit = _integer(request.query_params, self.limit_query_param, low=1, high=MAX_PAGE)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Any) -> int:
        offset = _integer(request.query_params, self.offset_query_param, low=0, high=MAX_OFFSET)
        return offset or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: (1, MAX_PAGE), self.offset_query_param: (0, MAX_OFFSET)}
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"] = {"type": "integer", "minimum": low, "maximum": high}
        return parameters


def ids(params: Any, name: str) -> list[int] | None:
    """The ids in filter ``name`` (``1,2,3``), None when absent; 400 naming it for
    anything else."""
    raw = params.get(name)
    if not raw:
        return None
    values = raw.split(",")
    if not all(v.isascii() and v.isdigit() and 0 < int(v) <= MAX_ID for v in values):
        raise ValidationError({name: ["must be comma-separated ids"]})
    return [int(v) for v in values]
