"""Orders traded end to end: REST API -> Celery -> ccxt -> simulated exchange over HTTP,
and acks and fills back into the OMS. Only the REST API (and the simulator's admin
endpoints, to set up the market) is used."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pytest

from tests.system.conftest import SIM_KEY, SIM_SECRET, order_status, wait_for

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=False)]

_ids = itertools.count(1)


def coid(prefix: str) -> str:
    return f"sys-{prefix}-{next(_ids)}"


def book(stack, symbol="BTCUSDT"):
    return stack.sim_get("/sim/state", depth=5)["books"][symbol]


def best_ask(stack) -> D:
    return D(book(stack)["asks"][0][0])


def best_bid(stack) -> D:
    return D(book(stack)["bids"][0][0])


def position(api, symbol="BTC/USDT", account="DEMO") -> D:
    rows = api.get("/api/v1/positions/", params={"account": account, "symbol": symbol}).json()
    return D(rows["results"][0]["quantity"]) if rows["results"] else D(0)


def submit(api, **body):
    order = {"account": "DEMO", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
             "venue": "sim-a"}  # fmt: skip
    order.update(body)
    r = api.post("/api/v1/orders/", order)
    assert r.status_code == 201, r.text
    return r.json()


def test_limit_order_away_from_market_then_rests_accepted(stack):
    api = stack.api()
    price = (best_bid(stack) * D("0.9")).quantize(D("0.01"))
    order = submit(api, client_order_id=coid("rest"), quantity="0.001", price=str(price))
    accepted = wait_for(order_status(api, order["id"], "ACCEPTED"), timeout=15)
    assert accepted["venue_order_id"]
    assert accepted["leaves_quantity"] == "0.001"
    open_at_venue = stack.sim_get("/sim/state")["open_orders"]
    assert any(
        o["clientOrderId"] == order["venue_client_order_id"]
        for o in open_at_venue.get("default", [])
    )
    api.post(f"/api/v1/orders/{order['id']}/cancel/")
    wait_for(order_status(api, order["id"], "CANCELED"))


def test_crossing_order_then_filled_with_fills_position_and_pnl(stack):
    api = stack.api()
    before = position(api)
    price = (best_ask(stack) * D("1.01")).quantize(D("0.01"))
    order = submit(api, client_order_id=coid("cross"), quantity="0.002", price=str(price))
    filled = wait_for(order_status(api, order["id"], "FILLED"), timeout=15)
    assert filled["filled_quantity"] == "0.002" and filled["leaves_quantity"] == "0"
    assert D(filled["average_price"]) <= price
    assert filled["fills"], "fills listed on the order"
    assert sum(D(f["quantity"]) for f in filled["fills"]) == D("0.002")
    fills = api.get("/api/v1/fills/", params={"order": order["id"]}).json()["results"]
    assert {f["venue_trade_id"] for f in fills} == {f["venue_trade_id"] for f in filled["fills"]}
    assert position(api) == before + D("0.002")
    # sell it back: realized P&L moves (by the spread and fees, never zero)
    pnl_before = D(api.get("/api/v1/positions/").json()["results"][0]["realized_pnl"])
    sell_price = (best_bid(stack) * D("0.99")).quantize(D("0.01"))
    sell = submit(
        api, client_order_id=coid("sell"), side="sell", quantity="0.002", price=str(sell_price)
    )
    wait_for(order_status(api, sell["id"], "FILLED"), timeout=15)
    assert position(api) == before
    pnl_after = D(api.get("/api/v1/positions/").json()["results"][0]["realized_pnl"])
    assert pnl_after != pnl_before


def test_partial_fill_then_cancel_keeps_fill(stack):
    api = stack.api()
    # more than the whole best offer, at its price: takes the level and rests the rest
    price, level = (D(x) for x in book(stack)["asks"][0])
    qty = level + D("0.003")
    order = submit(api, client_order_id=coid("partial"), quantity=str(qty), price=str(price))
    partial = wait_for(order_status(api, order["id"], "PARTIALLY_FILLED"), timeout=15)
    assert D(partial["filled_quantity"]) == level
    assert D(partial["leaves_quantity"]) == D("0.003")
    r = api.post(f"/api/v1/orders/{order['id']}/cancel/")
    assert r.status_code == 202
    canceled = wait_for(order_status(api, order["id"], "CANCELED"), timeout=15)
    assert D(canceled["filled_quantity"]) == level
    assert [e["kind"] for e in canceled["events"]][-2:] == ["OrderCancelRequested", "OrderCanceled"]


def test_amend_price_and_quantity_then_new_order_at_venue(stack):
    api = stack.api()
    price = (best_bid(stack) * D("0.9")).quantize(D("0.01"))
    order = submit(api, client_order_id=coid("amend"), quantity="0.001", price=str(price))
    wait_for(order_status(api, order["id"], "ACCEPTED"))
    new_price = price - D("1.00")
    r = api.post(
        f"/api/v1/orders/{order['id']}/amend/", {"quantity": "0.002", "price": str(new_price)}
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "PENDING_REPLACE"

    def amended():
        body = api.get(f"/api/v1/orders/{order['id']}/").json()
        return body if body["status"] == "ACCEPTED" and body["quantity"] == "0.002" else None

    done = wait_for(amended, timeout=15)
    assert D(done["price"]) == new_price
    at_venue = [
        o
        for o in stack.sim_get("/sim/state")["open_orders"].get("default", [])
        if o["clientOrderId"].startswith(order["venue_client_order_id"])
    ]
    assert len(at_venue) == 1
    assert at_venue[0]["clientOrderId"] == f"{order['venue_client_order_id']}/1"
    assert D(at_venue[0]["price"]) == new_price and D(at_venue[0]["origQty"]) == D("0.002")
    api.post(f"/api/v1/orders/{order['id']}/cancel/")
    wait_for(order_status(api, order["id"], "CANCELED"))


def test_ioc_remainder_then_canceled(stack):
    api = stack.api()
    price, level = (D(x) for x in book(stack)["asks"][0])
    qty = level + D("0.004")
    order = submit(
        api, client_order_id=coid("ioc"), quantity=str(qty), price=str(price), time_in_force="IOC"
    )
    done = wait_for(order_status(api, order["id"], "CANCELED"), timeout=15)
    assert D(done["filled_quantity"]) == level
    assert "IOC remainder canceled" in done["reason"]


def test_market_order_then_filled(stack):
    api = stack.api()
    before = position(api, "ETH/USDT")
    order = submit(api, client_order_id=coid("mkt"), symbol="ETH/USDT", type="market",
                   quantity="0.01")  # fmt: skip
    filled = wait_for(order_status(api, order["id"], "FILLED"), timeout=15)
    assert filled["filled_quantity"] == "0.01" and filled["average_price"]
    assert position(api, "ETH/USDT") == before + D("0.01")


def test_order_the_venue_rejects_then_rejected_with_venue_reason(stack):
    api = stack.api()
    price = (best_ask(stack) * D("1.01")).quantize(D("0.01"))
    # 20 BTC (~1.2M USDT) is beyond the simulated account's 1M USDT balance
    order = submit(api, client_order_id=coid("rej"), quantity="20", price=str(price))
    rejected = wait_for(order_status(api, order["id"], "REJECTED"), timeout=15)
    assert "insufficient balance" in rejected["reason"].lower()


def test_cancel_of_order_unknown_at_venue_then_canceled(stack):
    api = stack.api()
    price = (best_bid(stack) * D("0.9")).quantize(D("0.01"))
    order = submit(api, client_order_id=coid("gone"), quantity="0.001", price=str(price))
    accepted = wait_for(order_status(api, order["id"], "ACCEPTED"))
    import ccxt

    # the venue loses the order: canceled behind the OMS's back

    ex = ccxt.binance({"apiKey": SIM_KEY, "secret": SIM_SECRET})
    ex.urls["api"] = {"public": stack.sim + "/api/v3", "private": stack.sim + "/api/v3"}
    ex.options.update({"fetchCurrencies": False, "fetchMargins": False})
    ex.options["fetchMarkets"] = {"types": ["spot"]}
    ex.cancel_order(accepted["venue_order_id"], "BTC/USDT")
    r = api.post(f"/api/v1/orders/{order['id']}/cancel/")
    assert r.status_code == 202
    done = wait_for(order_status(api, order["id"], "CANCELED"), timeout=15)
    assert done["filled_quantity"] == "0"


def test_cancel_of_unknown_order_id_then_404(stack):
    r = stack.api().post("/api/v1/orders/987654321/cancel/")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"


def test_orders_traded_by_the_workers_then_every_audit_chain_holds(stack):
    """The events the real workers wrote (the mark as a prepared statement, acks and
    fills under the row lock) are sealed as ``oms audit verify`` recomputes them."""
    import subprocess
    import sys

    from omsweb.stack import ROOT

    api = stack.api()
    price = (best_ask(stack) * D("1.01")).quantize(D("0.01"))
    for n in range(3):
        order = submit(api, client_order_id=coid(f"audit{n}"), quantity="0.001", price=str(price))
        wait_for(order_status(api, order["id"], "FILLED"), timeout=15)
    verify = subprocess.run(
        [sys.executable, "-m", "omsweb.cli", "audit", "verify"],
        env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "every chain holds" in verify.stdout
