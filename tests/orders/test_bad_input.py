"""Bad input over real HTTP: always a 400 naming the field, never a 5xx, nothing written
(issue 12, item 4: each case was seen answered 500, or silently accepted)."""

from __future__ import annotations

import pytest

from tests.conftest import limit_order

pytestmark = pytest.mark.django_db(transaction=True)


def _written() -> int:
    from orders.models import Order, OrderEvent

    return Order.objects.count() + OrderEvent.objects.count()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "1E+999999999"),  # decimal.Overflow / numeric field overflow
        ("price", "1E+999999999"),
        ("quantity", "１"),  # fullwidth digit
        ("quantity", "١٢٣"),  # Arabic-Indic digits
        ("quantity", "1_000"),
        ("quantity", " 1 "),
        ("quantity", "1e-999999999"),
        ("price", "NaN"),
    ],
)
def test_submit_with_a_number_not_written_plainly_then_400_naming_it(api, field, value):
    before = _written()
    r = api("trader").post("/api/v1/orders/", limit_order(**{field: value}))
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]["fields"], r.text
    assert _written() == before


def test_submit_with_a_client_order_id_ending_in_a_newline_then_400(api):
    r = api("trader").post("/api/v1/orders/", limit_order(client_order_id="abc\n"))
    assert r.status_code == 400, r.text
    assert "client_order_id" in r.json()["error"]["fields"]


def test_submit_with_json_nested_1000_deep_then_400(api):
    body = '{"account": ' + "[" * 1000 + "]" * 1000 + "}"
    r = api("trader").post(
        "/api/v1/orders/", data=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in ("PARSE_ERROR", "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/?account=%00",
        "/api/v1/fills/?account=%00",
        "/api/v1/positions/?account=%00",
        "/api/v1/risk/limits/?account=%00",
        "/api/v1/orders/?client_order_id=a%00b",
        "/api/v1/fills/?order=%C2%B2",
        "/api/v1/orders/?limit=1e23",
        "/api/v1/orders/?limit=99999999999999999999999",
        "/api/v1/orders/?offset=99999999999999999999999",
    ],
)
def test_list_with_a_filter_no_row_can_match_then_400_naming_it(api, path):
    r = api("risk").get(path)
    assert r.status_code == 400, (path, r.status_code, r.text[:300])
    assert r.json()["error"]["field"], r.text
