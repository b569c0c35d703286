"""The OpenAPI schema says what the server does (issue 12, item 5): the rules that a
fuzzer can only sample (tests/omsweb/test_schema_fuzz.py), checked here in full."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from omsweb.strict_input import DECIMAL_SCHEMA, POSITIVE_DECIMAL_SCHEMA

NUMBERISH = st.text(alphabet="0123456789.", max_size=40) | st.text(
    alphabet="00000123456789.eE+-_ \n１", max_size=24
)


def _valid_by_schema(schema: dict, text: str) -> bool:
    # JSON Schema: maxLength, and the pattern searched for (it is anchored)
    return len(text) <= schema["maxLength"] and re.search(schema["pattern"], text) is not None


def _accepted(parse, text: str) -> bool:
    try:
        parse(text)
    except (ValidationError, Exception) as exc:  # noqa: B014 - either refusal counts
        if isinstance(exc, ValidationError) or type(exc).__name__.endswith("ValidationError"):
            return False
        raise
    return True


@settings(max_examples=400, deadline=None)
@given(NUMBERISH | st.from_regex(POSITIVE_DECIMAL_SCHEMA["pattern"]))
def test_order_quantity_and_price_then_schema_pattern_takes_exactly_what_the_field_takes(text):
    from orders.api.serializers import PositiveDecimalField

    field = PositiveDecimalField()
    assert _valid_by_schema(POSITIVE_DECIMAL_SCHEMA, text) == _accepted(
        field.to_internal_value, text
    ), text


@settings(max_examples=400, deadline=None)
@given(NUMBERISH | st.from_regex(DECIMAL_SCHEMA["pattern"]))
def test_limit_value_then_schema_pattern_takes_exactly_what_the_api_takes(text):
    from risk.api.serializers import LimitValueField
    from risk.services import _check_value

    def parse(raw: str) -> object:
        return _check_value("max_position", LimitValueField().to_internal_value(raw))

    assert _valid_by_schema(DECIMAL_SCHEMA, text) == _accepted(parse, text), text


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_then_a_limit_order_needs_a_price_and_a_market_order_takes_none(schema):
    parts = schema["components"]["schemas"]
    one_of = {ref["$ref"].rsplit("/", 1)[1] for ref in parts["OrderCreateRequest"]["oneOf"]}
    assert one_of == {"LimitOrderCreateRequest", "MarketOrderCreateRequest"}
    limit, market = parts["LimitOrderCreateRequest"], parts["MarketOrderCreateRequest"]
    assert "price" in limit["required"]
    price = market["properties"]["price"]  # null only (drf-spectacular names the enum)
    enums = [parts[ref["$ref"].rsplit("/", 1)[1]] for ref in price.get("oneOf", [])] or [price]
    assert all(e.get("enum") in ([], [None]) for e in enums), price  # no value but null
    assert "price" not in market.get("required", [])


def test_schema_then_strict_bodies_refuse_extra_properties_and_errors_are_documented(schema):
    parts = schema["components"]["schemas"]
    for name in ("LimitOrderCreateRequest", "OrderAmendRequest", "LimitCreateRequest"):
        assert parts[name]["additionalProperties"] is False, name
    create = schema["paths"]["/api/v1/orders/"]["post"]["responses"]
    assert {"200", "201", "400", "401", "403", "409", "422"} <= set(create)
    detail = schema["paths"]["/api/v1/orders/{id}/"]["get"]["responses"]
    assert {"401", "403", "404"} <= set(detail)


def test_schema_then_limit_and_offset_bounded_and_query_strings_hold_no_nul(schema):
    params = {
        p["name"]: p["schema"] for p in schema["paths"]["/api/v1/orders/"]["get"]["parameters"]
    }
    assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 1000)
    assert params["offset"]["minimum"] == 0 and "nullable" not in params["offset"]
    assert re.search(params["status"]["pattern"], "NEW\x00") is None
