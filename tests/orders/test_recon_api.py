"""Reconciliation findings in the REST API (real HTTP) and the admin (issue 12, item 3):
who sees which finding, the filters, and the operator's actions."""

from __future__ import annotations

import pytest

from orders.models import Order, ReconFinding
from orders.reconcile import record_finding
from tests.conftest import limit_order
from venues.models import Venue

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/reconciliation/findings/"


@pytest.fixture
def found(api):
    """Three open findings at sim-a: about a DEMO order (critical), about a HEDGE order
    (warning), and a venue-wide mass-missing alert over no order still working."""
    demo = api("trader").post("/api/v1/orders/", limit_order(client_order_id="f-demo"))
    hedge = api("outsider").post(
        "/api/v1/orders/", limit_order(account="HEDGE", client_order_id="f-hedge")
    )
    assert demo.status_code == hedge.status_code == 201, (demo.text, hedge.text)
    venue = Venue.objects.get(name="sim-a")
    rows = {}
    for name, order_id, kind, severity in (
        ("demo", demo.json()["id"], "STATUS_MISMATCH", "CRITICAL"),
        ("hedge", hedge.json()["id"], "FILLED_MISMATCH", "WARNING"),
        ("alert", None, "MASS_MISSING", "CRITICAL"),
    ):
        rows[name], _ = record_finding(
            venue=venue, kind=kind, severity=severity, key=f"k-{name}", message=name,
            order_id=order_id, detail={"orders": [hedge.json()["id"]]} if order_id is None else {},
        )  # fmt: skip
    return rows


def ids(response) -> set[int]:
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["results"]}


def test_findings_when_trader_then_only_their_accounts(api, found):
    assert ids(api("trader").get(URL)) == {found["demo"].pk}
    assert ids(api("outsider").get(URL)) == {found["hedge"].pk}
    assert ids(api("risk").get(URL)) == {f.pk for f in found.values()}
    assert api("outsider").get(f"{URL}{found['demo'].pk}/").status_code == 404
    body = api("trader").get(f"{URL}{found['demo'].pk}/").json()
    assert (body["kind"], body["severity"], body["open"], body["venue"]) == (
        "STATUS_MISMATCH", "CRITICAL", True, "sim-a",
    )  # fmt: skip
    assert api(None).get(URL).status_code in (401, 403)


def test_findings_filters_and_bad_filters_named(api, found):
    risk = api("risk")
    assert ids(risk.get(URL, params={"severity": "CRITICAL"})) == {
        found["demo"].pk, found["alert"].pk,
    }  # fmt: skip
    assert ids(risk.get(URL, params={"venue": "sim-b"})) == set()
    assert ids(risk.get(URL, params={"kind": "MASS_MISSING", "open": "true"})) == {
        found["alert"].pk
    }
    assert ids(risk.get(URL, params={"open": "false"})) == set()
    for param, value in (("severity", "LOUD"), ("open", "maybe"), ("kind", "X")):
        r = risk.get(URL, params={param: value})
        assert r.status_code == 400, r.text
        assert param in r.json()["error"]["fields"], r.text


def test_resolve_finding_when_risk_then_recorded_when_trader_then_403(api, found):
    url = f"{URL}{found['demo'].pk}/resolve/"
    assert api("trader").post(url, {}).status_code == 403
    r = api("risk").post(url, {"resolution": "canceled at the venue by hand"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["open"], body["resolved_by"]) == (False, "risk")
    assert body["resolution"] == "canceled at the venue by hand"
    assert api("risk").post(url, {}).status_code == 409  # resolved already
    assert api("risk").post(url, {"colour": "red"}).status_code == 400
    # a mass-missing alert is not "resolved": it is confirmed
    alert = f"{URL}{found['alert'].pk}/"
    assert api("risk").post(alert + "resolve/", {}).status_code == 409
    assert api("risk").post(f"{URL}{found['hedge'].pk}/confirm/").status_code == 409


def test_confirm_mass_missing_through_the_api_then_resolved(api, found):
    # the alert's order is PENDING_NEW (never at the venue): nothing to close there
    assert api("trader").post(f"{URL}{found['alert'].pk}/confirm/").status_code == 403
    r = api("admin").post(f"{URL}{found['alert'].pk}/confirm/")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["closed"] == [] and body["finding"]["resolved_by"] == "admin"
    assert "confirmed by admin" in body["finding"]["resolution"]
    assert api("admin").post(f"{URL}{found['alert'].pk}/confirm/").status_code == 409


def test_admin_lists_findings_and_resolves_them(client, found, users):
    from django.contrib.auth.models import User

    User.objects.filter(username="admin").update(is_staff=True)
    client.force_login(User.objects.get(username="admin"))
    page = client.get("/admin/orders/reconfinding/", {"open": "yes"})
    assert page.status_code == 200
    assert b"STATUS_MISMATCH" in page.content and b"CRITICAL" in page.content
    r = client.post(
        "/admin/orders/reconfinding/",
        {"action": "resolve_findings", "_selected_action": [found["demo"].pk]},
    )
    assert r.status_code == 302
    assert ReconFinding.objects.get(pk=found["demo"].pk).resolved_by == "admin"
    assert client.get(f"/admin/orders/reconfinding/{found['alert'].pk}/change/").status_code == 200
    accounts = client.get("/admin/orders/account/")
    assert b"demo-desk" in accounts.content  # the STP group
    assert Order.objects.count() == 2
