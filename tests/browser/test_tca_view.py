"""The blotter's TCA view in a real browser against the real stack: an order filled at
the simulated venue gets its arrival mid and, from the beat sweep, its +1 s markout;
the view shows its figures and both charts (Chart.js, vendored) draw with no request
leaving 127.0.0.1."""

from __future__ import annotations

import os
from decimal import Decimal as D
from urllib.parse import urlsplit

import pytest

from omsweb.stack import Api, wait_for
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.system]


def _best_ask(stack) -> D:
    book = stack.sim_get("/sim/state", depth=1)["books"]["BTCUSDT"]
    return D(book["asks"][0][0])


def test_tca_view_then_order_figures_and_charts_drawn_offline(browser, stack, web_users):
    # Arrange: a crossing buy at sim-a, filled; its TCA row has an arrival mid
    api = Api(stack.web, web_users["web-trader"])
    client_id = f"web-tca-{os.getpid() % 10000}"
    price = (_best_ask(stack) * D("1.01")).quantize(D("0.01"))
    r = api.post(
        "/api/v1/orders/",
        {"client_order_id": client_id, "account": "DEMO", "symbol": "BTC/USDT",
         "side": "buy", "type": "limit", "quantity": "0.002", "price": str(price),
         "venue": "sim-a"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]

    def figures() -> dict | None:
        rows = api.get("/api/v1/tca/", params={"account": "DEMO"}).json()["orders"]
        row = next((o for o in rows if o["order_id"] == order_id), None)
        return row if row and row["filled_quantity"] == "0.002" else None

    wait_for(lambda: figures() is not None, timeout=30)
    assert figures()["arrival_mid"] is not None
    # the +1 s markout: sampled by the recon worker's beat sweep from the mark history
    wait_for(lambda: figures()["markout_1s_bp"] is not None, timeout=30)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    outside: list[str] = []

    def guard(route):
        parts = urlsplit(route.request.url)
        if parts.scheme not in ("data", "blob", "about") and parts.hostname != "127.0.0.1":
            outside.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    context.route("**/*", guard)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, stack.web, "web-trader")
        # Act
        page.click("a[href='/tca/']")
        page.wait_for_selector("#tca[data-state=ready]")
        # Assert: the order's row, the venue's aggregates and score rows
        row = page.locator(f'#tca-orders tr[data-order-id="{order_id}"]')
        assert row.count() == 1 and client_id in row.inner_text()
        assert page.locator('#tca-venues tr[data-key="sim-a"]').count() == 1
        assert page.locator('#tca-scores tr[data-venue="sim-a"]').count() >= 1
        # both charts drew datasets with data, from the vendored library
        drawn = page.evaluate(
            """() => ["chart-slippage", "chart-markouts"].map((id) => {
                const chart = Chart.getChart(id);
                return chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : -1;
            })"""
        )
        assert all(n > 0 for n in drawn), drawn
        assert page.evaluate(
            "() => Chart.getChart('chart-markouts').data.datasets.some("
            "d => d.label === 'sim-a' && d.data[0] !== null)"
        )
        assert page.evaluate(
            "() => Chart.getChart('chart-slippage').data.datasets.some("
            "d => d.label === 'sim-a' && d.data.some(v => v > 0))"
        )
        # a bad filter is said inline, naming the field
        page.fill("#tca-filters input[name=since]", "yesterday")
        page.click("#tca-filters button[type=submit]")
        page.wait_for_selector("#tca[data-state=error]")
        assert "since" in page.inner_text("#tca-error")
        assert errors == []
        assert outside == [], f"requests leaving 127.0.0.1: {sorted(set(outside))}"
    finally:
        context.close()
