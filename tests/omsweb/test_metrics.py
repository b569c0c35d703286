"""``/metrics`` (omsweb/metrics_endpoint.py) served by a real web server: the counted
series of every process plus the state read at scrape time, and who may read it."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import limit_order

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),  # no collectstatic
]


def scrape(base: str, **kw) -> dict[tuple[str, tuple], float]:
    r = requests.get(base + "/metrics", timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_scrape_after_an_order_then_order_and_queue_series_move(api, web_server):
    # Arrange
    before = scrape(web_server)
    # Act
    r = api("trader").post("/api/v1/orders/", limit_order(client_order_id="metrics-1"))
    assert r.status_code == 201, r.text
    after = scrape(web_server)
    # Assert: no worker runs here, so the order waits PENDING_NEW in the orders queue
    pending_before = value(before, "oms_orders", status="PENDING_NEW")
    assert value(after, "oms_orders", status="PENDING_NEW") == pending_before + 1
    assert total(after, "oms_queue_depth") == total(before, "oms_queue_depth") + 1
    assert value(after, "oms_queue_depth", queue="oms.urgent") == 0  # every queue is listed
    assert value(after, "oms_orders", status="FILLED") == 0
    assert ("oms_venue_breaker_state", (("venue", "sim-a"),)) in after
    assert value(after, "oms_venue_breaker_state", venue="sim-a") == 0  # closed


def test_metrics_from_another_host_then_403_unless_bearer_token(client, settings):
    # Arrange
    settings.METRICS_TOKEN = "s3cret-metrics"
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    # Act
    anonymous = client.get("/metrics", **remote)
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **remote)
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics", **remote)
    # Assert
    assert anonymous.status_code == 403
    assert anonymous.json()["error"]["code"] == "FORBIDDEN"
    assert wrong.status_code == 403
    assert right.status_code == 200
    assert b"oms_orders" in right.content


def test_metrics_from_another_host_without_a_token_setting_then_403(client, settings):
    settings.METRICS_TOKEN = None
    r = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer ")
    assert r.status_code == 403


def test_metrics_from_loopback_then_served_without_login(client):
    r = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert r.status_code == 200
    assert b"# TYPE oms_queue_depth gauge" in r.content


def test_grafana_dashboard_uses_only_exported_metrics_and_the_lifecycle_open_statuses():
    import json
    import re

    from omsweb import metrics
    from omsweb.metrics_endpoint import StateCollector
    from orders.domain.lifecycle import OPEN_STATUSES
    from tests.conftest import ROOT

    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    counted = {
        m._name for m in vars(metrics).values() if hasattr(m, "_name") and hasattr(m, "_type")
    }
    at_scrape = {family.name for family in StateCollector().collect()}
    used = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for expr in exprs
        for name in re.findall(r"\boms_\w+", expr)
    }
    assert used - counted - at_scrape == set()
    assert counted - used == set()  # every counted series is on the dashboard
    (open_,) = [m for e in exprs for m in re.findall(r'status=~"([A-Z_|]+)"', e)]
    assert set(open_.split("|")) == {s.value for s in OPEN_STATUSES}
