"""The blotter in a real browser against the real stack: ticket -> REST -> Celery -> ccxt ->
simulated exchange -> fills -> WebSocket -> the page, with no reload anywhere."""

from __future__ import annotations

import itertools
import os
from decimal import Decimal as D
from pathlib import Path

import pytest

from omsweb.stack import Api, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.system]

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count(1)


def coid(prefix: str) -> str:
    return f"web-{prefix}-{os.getpid() % 10000}-{next(_ids)}"


def best(stack, side: str, symbol: str = "BTCUSDT") -> D:
    book = stack.sim_get("/sim/state", depth=1)["books"][symbol]
    return D(book["asks" if side == "ask" else "bids"][0][0])


def order_row(page, client_order_id: str, status: str | None = None) -> str:
    sel = f'#orders tr[data-client-order-id="{client_order_id}"]'
    return sel + (f'[data-status="{status}"]' if status else "")


def position_qty(page, account: str, symbol: str) -> D:
    value = page.evaluate(
        """([a, s]) => {
            const row = document.querySelector(`#positions tr[data-account="${a}"][data-symbol="${s}"]`);
            return row ? row.dataset.quantity : "0";
        }""",
        [account, symbol],
    )
    return D(value)


def fill_ticket(page, *, side="buy", type="limit", quantity, price=None, account="DEMO",
                symbol="BTC/USDT", tif="GTC", venue="sim-a"):  # fmt: skip
    """The ticket; ``venue`` "" for automatic (a parent order, routed)."""
    page.select_option("#ticket select[name=venue]", venue)
    page.select_option("#ticket select[name=account]", account)
    page.select_option("#ticket select[name=symbol]", symbol)
    page.check(f"#ticket input[name=side][value={side}]", force=True)
    page.select_option("#ticket select[name=type]", type)
    page.select_option("#ticket select[name=time_in_force]", tif)
    page.fill("#ticket input[name=quantity]", str(quantity))
    if price is not None:
        page.fill("#ticket input[name=price]", str(price))


def submit_ticket(page) -> str:
    """Submit and return the new order's client id, as the ticket reports it."""
    page.evaluate("document.getElementById('ticket-result').dataset.clientOrderId = ''")
    page.click("#ticket-submit")
    page.wait_for_function("document.getElementById('ticket-result').dataset.clientOrderId !== ''")
    return page.get_attribute("#ticket-result", "data-client-order-id")


def test_login_required_then_live_blotter(new_page, stack):
    page = new_page("web-trader")
    assert page.url.rstrip("/") == stack.web
    assert page.inner_text("#who-name") == "web-trader"
    assert page.evaluate("window.omsBlotter.live()")
    # accounts the user may see fill the ticket and the filters; no kill switch for a trader
    accounts = page.eval_on_selector_all(
        "#ticket select[name=account] option", "os => os.map(o => o.value)"
    )
    assert sorted(accounts) == ["DEMO", "HEDGE"]
    assert page.query_selector("#kill-switch") is None
    # a fresh browser without a session is sent to the login page
    anonymous = page.context.browser.new_context()
    try:
        other = anonymous.new_page()
        other.goto(stack.web + "/")
        assert "/login/" in other.url
        other.fill("input[name=username]", "web-trader")
        other.fill("input[name=password]", "wrong")
        other.click("button[type=submit]")
        assert "Wrong user name or password" in other.inner_text("form")
    finally:
        anonymous.close()
    assert page.js_errors == []


def test_crossing_order_from_ticket_then_filled_and_position_moves_without_reload(new_page, stack):
    page = new_page("web-trader")
    page.evaluate("window.__noReload = 42")
    before = position_qty(page, "DEMO", "BTC/USDT")
    price = (best(stack, "ask") * D("1.01")).quantize(D("0.01"))
    fill_ticket(page, quantity="0.002", price=price)
    client_id = submit_ticket(page)
    assert "PENDING_NEW" in page.inner_text("#ticket-result")

    page.wait_for_selector(order_row(page, client_id, "FILLED"))
    row = page.query_selector(order_row(page, client_id))
    order_id = row.get_attribute("data-order-id")
    cells = row.query_selector_all("td")
    assert cells[6].inner_text() == "0.00200"  # quantity at the lot size's precision
    assert cells[8].inner_text() == "0.00200"  # filled
    page.wait_for_selector(f'#fills tr[data-order-id="{order_id}"]')
    wait_for(lambda: position_qty(page, "DEMO", "BTC/USDT") == before + D("0.002"), timeout=10)
    assert page.evaluate("window.__noReload") == 42  # the same page: nothing reloaded
    assert page.evaluate("window.omsBlotter.stats.snapshots") == 1
    assert page.js_errors == []


def test_order_risk_denies_then_reasons_shown_inline(new_page, stack):
    page = new_page("web-trader")
    price = (best(stack, "ask") * D("1.01")).quantize(D("0.01"))
    fill_ticket(page, quantity="500", price=price)  # far beyond any order size limit
    with page.expect_response(lambda r: r.url.endswith("/api/v1/orders/")) as answer:
        page.click("#ticket-submit")
    response = answer.value
    if response.status != 422:
        pytest.skip(f"no pre-trade risk denial on this server (HTTP {response.status})")
    reasons = response.json()["error"]["reasons"]
    assert reasons
    page.wait_for_selector("#ticket-result.denied")
    shown = page.inner_text("#ticket-result")
    assert "Denied by risk" in shown
    for reason in reasons:
        assert (reason.get("message") or reason["check"]) in shown
    client_id = response.json()["order"]["client_order_id"]
    page.wait_for_selector(order_row(page, client_id, "DENIED"))


def test_cancel_resting_order_from_its_row_then_canceled(new_page, stack):
    page = new_page("web-trader")
    price = (best(stack, "bid") * D("0.95")).quantize(D("0.01"))
    fill_ticket(page, quantity="0.001", price=price)
    client_id = submit_ticket(page)
    row = order_row(page, client_id, "ACCEPTED")
    page.wait_for_selector(row)
    page.click(f"{row} button[data-action=cancel]")
    page.wait_for_selector(order_row(page, client_id, "CANCELED"))
    # a canceled order offers no more actions
    assert page.query_selector(f"{order_row(page, client_id)} button") is None


def test_amend_resting_order_from_its_row_then_new_price_shown(new_page, stack):
    page = new_page("web-trader")
    price = (best(stack, "bid") * D("0.95")).quantize(D("0.01"))
    fill_ticket(page, quantity="0.001", price=price)
    client_id = submit_ticket(page)
    row = order_row(page, client_id, "ACCEPTED")
    page.wait_for_selector(row)
    page.click(f"{row} button[data-action=amend]")
    new_price = price - D("1")
    page.fill("#amend-form input[name=price]", str(new_price))
    page.click("#amend-form button[type=submit]")
    page.wait_for_function(
        """([cid, price]) => {
            const o = [...window.omsBlotter.state.orders.values()].find(x => x.client_order_id === cid);
            return o && o.status === "ACCEPTED" && o.price === price;
        }""",
        arg=[client_id, str(new_price)],
    )
    page.click(f"{order_row(page, client_id)} button[data-action=cancel]")
    page.wait_for_selector(order_row(page, client_id, "CANCELED"))


def test_kill_switch_halts_account_then_working_orders_canceled(new_page, stack, web_users):
    risk_api = Api(stack.web, web_users["web-risk"])
    probe = risk_api.get("/api/v1/risk/trading-state/")
    if probe.status_code == 404:
        pytest.skip("GET /api/v1/risk/trading-state/ is 404: the risk engine is not installed")
    trader = Api(stack.web, web_users["web-trader"])
    price = (best(stack, "bid") * D("0.95")).quantize(D("0.01"))
    placed = trader.post(
        "/api/v1/orders/",
        {"client_order_id": coid("kill"), "account": "HEDGE", "symbol": "BTC/USDT",
         "side": "buy", "type": "limit", "quantity": "0.001", "price": str(price)},
    )  # fmt: skip
    assert placed.status_code == 201, placed.text
    client_id = placed.json()["client_order_id"]

    page = new_page("web-risk")
    page.wait_for_selector(order_row(page, client_id, "ACCEPTED"))
    form = "#kill-switch"
    page.select_option(f"{form} select[name=scope]", "account")
    page.select_option(f"{form} select[name=target]", "HEDGE")
    page.select_option(f"{form} select[name=state]", "HALTED")
    assert page.is_disabled("#kill-submit"), "a reason is required"
    page.fill(f"{form} input[name=reason]", "browser test: halt HEDGE")
    try:
        page.click("#kill-submit")
        page.click("#confirm-yes")
        page.wait_for_selector("#kill-result.ok")
        page.wait_for_selector(order_row(page, client_id, "CANCELED"))
        page.wait_for_selector(
            '#trading-state tr[data-scope="account"][data-target="HEDGE"][data-state="HALTED"]'
        )
        assert "restricted" in page.inner_text("#trading-badge")
        # release from the same control
        page.select_option(f"{form} select[name=state]", "ACTIVE")
        page.fill(f"{form} input[name=reason]", "browser test: release HEDGE")
        page.click("#kill-submit")
        page.wait_for_selector('#trading-state tr[data-target="HEDGE"]', state="detached")
    finally:
        risk_api.post(
            "/api/v1/risk/kill-switch/",
            {"scope": "account", "target": "HEDGE", "state": "ACTIVE", "reason": "test cleanup"},
        )


def test_websocket_dropped_then_page_catches_up_from_snapshot(new_page, stack, web_users):
    page = new_page("web-trader")
    api = Api(stack.web, web_users["web-trader"])
    page.evaluate("window.omsBlotter.dropSocket(2500)")  # closed, stays away 2.5 s
    page.wait_for_selector("#conn:not([data-state=live])")
    price = (best(stack, "ask") * D("1.01")).quantize(D("0.01"))
    order = api.post(
        "/api/v1/orders/",
        {"client_order_id": coid("drop"), "account": "DEMO", "symbol": "BTC/USDT",
         "side": "buy", "type": "limit", "quantity": "0.001", "price": str(price)},
    ).json()  # fmt: skip
    wait_for(lambda: api.get(f"/api/v1/orders/{order['id']}/").json()["status"] == "FILLED")
    assert page.query_selector(order_row(page, order["client_order_id"])) is None
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_selector(order_row(page, order["client_order_id"], "FILLED"))
    stats = page.evaluate("window.omsBlotter.stats")
    assert stats["reconnects"] >= 1 and stats["snapshots"] >= 2


def test_lost_event_then_gap_noticed_and_snapshot_refetched(new_page, stack, web_users):
    page = new_page("web-trader")
    api = Api(stack.web, web_users["web-trader"])
    page.evaluate("window.omsBlotter.dropNextEvents(1)")  # the next event never arrives
    price = (best(stack, "ask") * D("1.01")).quantize(D("0.01"))
    order = api.post(
        "/api/v1/orders/",
        {"client_order_id": coid("gap"), "account": "DEMO", "symbol": "BTC/USDT",
         "side": "buy", "type": "limit", "quantity": "0.001", "price": str(price)},
    ).json()  # fmt: skip
    page.wait_for_selector(order_row(page, order["client_order_id"], "FILLED"))
    stats = page.evaluate("window.omsBlotter.stats")
    assert stats["dropped"] == 1
    assert stats["resyncs"] >= 1 and stats["snapshots"] >= 2, stats


def test_screenshot_with_live_data(new_page, stack, web_users, tmp_path):
    """A screenshot of a busy blotter (written to docs/img/blotter.png when
    OMS_WRITE_SCREENSHOT=1; otherwise kept in the test's tmp dir)."""
    api = Api(stack.web, web_users["web-trader"])
    bid, ask = best(stack, "bid"), best(stack, "ask")
    eth_bid = best(stack, "bid", "ETHUSDT")
    orders = [
        ("DEMO", "BTC/USDT", "buy", "limit", "0.004", (ask * D("1.002")).quantize(D("0.01"))),
        ("DEMO", "ETH/USDT", "buy", "market", "0.35", None),
        ("HEDGE", "BTC/USDT", "sell", "limit", "0.0025", (bid * D("0.998")).quantize(D("0.01"))),
        ("DEMO", "BTC/USDT", "buy", "limit", "0.003", (bid * D("0.99")).quantize(D("0.01"))),
        ("HEDGE", "ETH/USDT", "sell", "limit", "0.5", (eth_bid * D("1.02")).quantize(D("0.01"))),
        ("DEMO", "ETH/USDT", "buy", "limit", "0.8", (eth_bid * D("0.985")).quantize(D("0.01"))),
    ]
    for account, symbol, side, kind, qty, price in orders:
        body = {"client_order_id": coid("shot"), "account": account, "symbol": symbol,
                "side": side, "type": kind, "quantity": qty}  # fmt: skip
        if price is not None:
            body["price"] = str(price)
        assert api.post("/api/v1/orders/", body).status_code in (201, 422)
    page = new_page("web-trader")
    page.wait_for_function(
        "[...window.omsBlotter.state.orders.values()].filter(o => o.status === 'ACCEPTED').length >= 2"
    )
    price = (bid * D("0.9")).quantize(D("0.01"))
    fill_ticket(page, quantity="0.01", price=price, side="buy")
    page.wait_for_timeout(1200)  # a tick: marks, quotes and venue state filled in
    path = tmp_path / "blotter.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 20_000
    if os.environ.get("OMS_WRITE_SCREENSHOT") == "1":
        target = ROOT / "docs" / "img" / "blotter.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    # a common laptop screen: everything still on one screen, the actions still in view
    page.set_viewport_size({"width": 1366, "height": 768})
    page.wait_for_timeout(200)
    page.screenshot(path=str(tmp_path / "blotter-1366.png"))
    button = page.query_selector("#orders button[data-action=cancel]")
    assert button is not None and button.is_visible()
    box = button.bounding_box()
    assert box["x"] + box["width"] <= page.evaluate(
        "document.querySelector('.orders').getBoundingClientRect().right"
    )
    for account, symbol in (("DEMO", "BTC/USDT"), ("DEMO", "ETH/USDT")):
        api.post("/api/v1/orders/cancel-all/", {"account": account, "symbol": symbol})


def test_parent_order_row_expands_to_its_children_and_route_reasons(new_page, stack):
    # Arrange
    page = new_page("web-trader")
    price = (best(stack, "ask") * D("1.01")).quantize(D("0.01"))
    fill_ticket(page, quantity="0.002", price=price, venue="")  # automatic: the router
    # Act
    client_id = submit_ticket(page)
    page.wait_for_selector(order_row(page, client_id, "FILLED"), timeout=30_000)
    row = order_row(page, client_id)
    order_id = page.get_attribute(row, "data-order-id")
    # Assert: the children show under their parent only once it is expanded
    assert page.query_selector(f'#orders tr[data-parent-id="{order_id}"]') is None
    assert page.inner_text(f"{row} td:nth-child(12)").startswith("router")
    page.click(f"{row} button[data-action=expand]")
    page.wait_for_selector(f'#orders tr.child[data-parent-id="{order_id}"][data-status="FILLED"]')
    route = f'#orders tr.route-row[data-route-for="{order_id}"]'
    page.wait_for_selector(f'{route} li[data-venue="sim-a"]')
    text = page.inner_text(route)
    assert "round 1 (sweep)" in text and "sim-a: 0.00200 @" in text
    page.click(f"{row} button[data-action=expand]")  # collapse
    page.wait_for_selector(route, state="detached")
    assert page.js_errors == []


def test_side_column_taller_than_the_window_then_it_scrolls_and_no_panel_covers_another(
    new_page, stack, web_users
):
    # Arrange: a short window and a trading-state table of several rows: the side column's
    # panels are taller than the window
    risk_api = Api(stack.web, web_users["web-risk"])
    scopes = [("account", "HEDGE"), ("symbol", "ETH/USDT")]
    try:
        for scope, target in scopes:
            engaged = risk_api.post(
                "/api/v1/risk/kill-switch/",
                {"scope": scope, "target": target, "state": "REDUCING", "reason": "layout test"},
            )
            assert engaged.status_code in (200, 201), engaged.text
        page = new_page("web-risk", height=560)
        page.wait_for_selector('#trading-state tr[data-target="ETH/USDT"]')
        # Act
        page.locator("#kill-submit").scroll_into_view_if_needed()
        # Assert: the kill switch is drawn inside its own panel (a shrunk panel lets its
        # content spill under the next one, which then takes the clicks), and nothing covers
        # the button's centre
        placed = page.evaluate(
            """() => {
                const panel = document.querySelector(".panel.risk").getBoundingClientRect();
                const r = document.querySelector("#kill-submit").getBoundingClientRect();
                const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                return {inside: r.top >= panel.top && r.bottom <= panel.bottom,
                        on_top: !!(hit && hit.closest("#kill-submit"))};
            }"""
        )
        assert placed == {"inside": True, "on_top": True}, placed
    finally:
        for scope, target in scopes:
            risk_api.post(
                "/api/v1/risk/kill-switch/",
                {"scope": scope, "target": target, "state": "ACTIVE", "reason": "test cleanup"},
            )
