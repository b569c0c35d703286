"""The simulated exchange through real HTTP with unmodified ccxt binance (sync and async)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.venues.sim.conftest import RunningSim, async_ccxt_client, ccxt_client

pytestmark = pytest.mark.timeout(60)


def record_urls(ex: Any) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    original = ex.fetch

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        seen.append((method, url))
        return original(url, method, headers, body)

    ex.fetch = fetch
    return seen


def best(sim: RunningSim, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
    def get() -> tuple[Decimal, Decimal]:
        bid = sim.sim.engine.best_bid(symbol)
        ask = sim.sim.engine.best_ask(symbol)
        assert bid is not None and ask is not None
        return bid, ask

    result: tuple[Decimal, Decimal] = sim.call(get)
    return result


# ---------------------------------------------------------------------- market data


def test_load_markets_only_calls_exchange_info(sim: RunningSim) -> None:
    ex = ccxt_client(sim)
    urls = record_urls(ex)
    markets = ex.load_markets()
    assert urls == [("GET", f"{sim.api}/exchangeInfo")]
    btc = markets["BTC/USDT"]
    assert btc["id"] == "BTCUSDT" and btc["spot"] and btc["active"]
    assert btc["precision"]["price"] == 0.01
    assert btc["precision"]["amount"] == 0.00001
    assert btc["limits"]["cost"]["min"] == 5
    assert markets["ETH/USDT"]["precision"]["amount"] == 0.0001


def test_load_markets_with_list_option_and_time_adjust(sim: RunningSim) -> None:
    ex = ccxt_client(sim)
    ex.options["fetchMarkets"] = ["spot"]
    ex.options["adjustForTimeDifference"] = True
    urls = record_urls(ex)
    ex.load_markets()
    paths = [u.split("/api/v3/")[1].split("?")[0] for _, u in urls]
    assert sorted(paths) == ["exchangeInfo", "time"]
    assert all(u.startswith(sim.api) for _, u in urls)


def test_public_market_data(ex: Any, sim: RunningSim) -> None:
    bid, ask = best(sim)
    book = ex.fetch_order_book("BTC/USDT", limit=5)
    assert len(book["bids"]) == 5 and len(book["asks"]) == 5
    assert Decimal(str(book["bids"][0][0])) == bid
    assert Decimal(str(book["asks"][0][0])) == ask
    assert book["nonce"] is not None
    ticker = ex.fetch_ticker("BTC/USDT")
    assert ticker["symbol"] == "BTC/USDT"
    assert Decimal(str(ticker["bid"])) == bid and Decimal(str(ticker["ask"])) == ask
    tickers = ex.fetch_tickers()
    assert {"BTC/USDT", "ETH/USDT"} <= set(tickers)
    assert abs(ex.fetch_time() - ex.milliseconds()) < 5000
    assert ex.fetch_bids_asks(["BTC/USDT"])["BTC/USDT"]["bid"] == float(bid)


def test_fetch_balance(ex: Any) -> None:
    bal = ex.fetch_balance()
    assert bal["USDT"]["free"] == 1_000_000
    assert bal["BTC"]["total"] == 100
    assert bal["ETH"]["used"] == 0


# ---------------------------------------------------------------------- orders


def test_limit_order_rests_then_cancel(ex: Any, sim: RunningSim) -> None:
    bid, _ = best(sim)
    price = float(bid - 500)
    order = ex.create_order("BTC/USDT", "limit", "buy", 0.01, price, {"clientOrderId": "rest-1"})
    assert order["status"] == "open"
    assert order["clientOrderId"] == "rest-1"
    assert order["filled"] == 0 and order["remaining"] == 0.01
    bal = ex.fetch_balance()
    assert bal["USDT"]["used"] == pytest.approx(price * 0.01)

    by_id = ex.fetch_order(order["id"], "BTC/USDT")
    assert by_id["clientOrderId"] == "rest-1" and by_id["status"] == "open"
    by_cid = ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "rest-1"})
    assert by_cid["id"] == order["id"]
    by_cid2 = ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "rest-1"})
    assert by_cid2["id"] == order["id"]

    opened = ex.fetch_open_orders("BTC/USDT")
    assert [o["id"] for o in opened] == [order["id"]]

    canceled = ex.cancel_order(order["id"], "BTC/USDT")
    assert canceled["status"] == "canceled"
    assert ex.fetch_open_orders("BTC/USDT") == []
    assert ex.fetch_balance()["USDT"]["used"] == 0
    assert ex.fetch_order(order["id"], "BTC/USDT")["status"] == "canceled"


def test_cancel_by_client_order_id(ex: Any, sim: RunningSim) -> None:
    bid, _ = best(sim)
    ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100), {"clientOrderId": "c-2"})
    canceled = ex.cancel_order(None, "BTC/USDT", {"origClientOrderId": "c-2"})
    assert canceled["status"] == "canceled"


def test_crossing_limit_order_fills_with_trades(ex: Any, sim: RunningSim) -> None:
    _, ask = best(sim)
    order = ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(ask + 5))
    assert order["status"] == "closed"
    assert order["filled"] == 0.01
    assert order["average"] == pytest.approx(float(ask))
    assert order["trades"], "FULL response carries fills"
    fee = order["trades"][0]["fee"]
    assert fee["currency"] == "BTC" and fee["cost"] == pytest.approx(0.00001)
    trades = ex.fetch_my_trades("BTC/USDT")
    assert len(trades) == 1
    t = trades[0]
    assert t["order"] == order["id"] and t["side"] == "buy" and t["takerOrMaker"] == "taker"
    assert t["amount"] == 0.01 and t["price"] == float(ask)
    bal = ex.fetch_balance()
    assert bal["BTC"]["free"] == pytest.approx(100 + 0.01 - 0.00001)
    assert bal["USDT"]["free"] == pytest.approx(1_000_000 - float(ask) * 0.01)
    # filters on fetch_my_trades
    assert ex.fetch_my_trades("BTC/USDT", params={"orderId": order["id"]})[0]["id"] == t["id"]
    assert ex.fetch_my_trades("BTC/USDT", since=t["timestamp"] + 10_000) == []


def test_market_orders(ex: Any, sim: RunningSim) -> None:
    sell = ex.create_order("ETH/USDT", "market", "sell", 1.5)
    assert sell["status"] == "closed" and sell["filled"] == 1.5
    assert sell["trades"][0]["fee"]["currency"] == "USDT"
    buy = ex.create_order("ETH/USDT", "market", "buy", None, None, {"quoteOrderQty": 100})
    assert buy["status"] == "closed"
    assert buy["cost"] <= 100 and buy["cost"] > 99
    orders = ex.fetch_orders("ETH/USDT")
    assert [o["id"] for o in orders] == [sell["id"], buy["id"]]


def test_resting_order_filled_by_market_model(ex: Any, sim: RunningSim) -> None:
    bid, ask = best(sim)
    order = ex.create_order("BTC/USDT", "limit", "sell", 0.02, float(ask + 10))
    assert order["status"] == "open"
    sim.admin("POST", "/sim/market", json={"mid": {"BTC/USDT": str(ask + 50)}})
    got = ex.fetch_order(order["id"], "BTC/USDT")
    assert got["status"] == "closed" and got["filled"] == 0.02
    trades = ex.fetch_my_trades("BTC/USDT")
    assert trades[-1]["takerOrMaker"] == "maker"
    assert trades[-1]["fee"]["currency"] == "USDT"


def test_cancel_all_orders(ex: Any, sim: RunningSim) -> None:
    bid, _ = best(sim)
    for i in range(3):
        ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(bid - 100 - i))
    result = ex.cancel_all_orders("BTC/USDT")
    assert len(result) == 3
    assert ex.fetch_open_orders("BTC/USDT") == []
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_all_orders("BTC/USDT")


# ---------------------------------------------------------------------- errors


def test_bad_signature_is_authentication_error(sim: RunningSim) -> None:
    ex = ccxt_client(sim, secret="wrong")
    ex.load_markets()
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert "-1022" in str(info.value)


def test_unknown_api_key_is_authentication_error(sim: RunningSim) -> None:
    ex = ccxt_client(sim, key="nope")
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert "-2015" in str(info.value)


def test_stale_timestamp_is_invalid_nonce(sim: RunningSim) -> None:
    ex = ccxt_client(sim)
    ex.load_markets()
    ex.options["timeDifference"] = 120_000  # ccxt nonce() = now - timeDifference
    with pytest.raises(ccxt.InvalidNonce) as info:
        ex.fetch_balance()
    assert "-1021" in str(info.value)


def test_insufficient_funds(ex: Any, sim: RunningSim) -> None:
    bid, _ = best(sim)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 100, float(bid - 1000))
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "sell", 101, float(bid + 1000))


@pytest.mark.parametrize(
    ("amount", "price", "exc", "text"),
    [
        (0.01, "59000.001", ccxt.InvalidOrder, "PRICE_FILTER"),
        (0.000001, "59000", ccxt.InvalidOrder, "LOT_SIZE"),
        (0.00005, "59000", ccxt.BadRequest, "NOTIONAL"),
    ],
)
def test_filter_failures(ex: Any, amount: float, price: str, exc: type, text: str) -> None:
    ex.load_markets()
    # bypass ccxt's own precision rounding so the venue sees the bad values
    with pytest.raises(exc) as info:
        ex.privatePostOrder(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": f"{amount:.8f}",
                "price": price,
            }
        )
    assert f"Filter failure: {text}" in str(info.value)


def test_notional_failure_through_create_order(ex: Any, sim: RunningSim) -> None:
    bid, _ = best(sim)
    with pytest.raises((ccxt.InvalidOrder, ccxt.BadRequest)) as info:
        ex.create_order("BTC/USDT", "limit", "buy", 0.00005, float(bid - 100))
    assert "NOTIONAL" in str(info.value)


def test_duplicate_client_order_id(ex: Any, sim: RunningSim) -> None:
    bid, _ = best(sim)
    ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100), {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder) as info:
        ex.create_order(
            "BTC/USDT", "limit", "buy", 0.01, float(bid - 101), {"clientOrderId": "dup"}
        )
    assert "Duplicate order sent." in str(info.value)


def test_unknown_order(ex: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound) as info:
        ex.fetch_order("999999", "BTC/USDT")
    assert "-2013" in str(info.value)
    with pytest.raises(ccxt.OrderNotFound) as info:
        ex.cancel_order("999999", "BTC/USDT")
    assert "-2011" in str(info.value)
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "never-sent"})


def test_unknown_symbol_is_bad_symbol(ex: Any) -> None:
    ex.load_markets()
    with pytest.raises(ccxt.BadSymbol):
        ex.publicGetDepth({"symbol": "DOGEUSDT"})


def test_limit_maker_that_would_take(ex: Any, sim: RunningSim) -> None:
    _, ask = best(sim)
    with pytest.raises(ccxt.InvalidOrder) as info:
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(ask), {"postOnly": True})
    assert "immediately match" in str(info.value)


def test_5xx_fault_is_exchange_not_available(ex: Any, sim: RunningSim) -> None:
    ex.load_markets()
    sim.admin("POST", "/sim/faults", json={"error_rate": 1.0})
    bid, _ = best(sim)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100), {"clientOrderId": "f5"})
    log = sim.admin("GET", "/sim/requests", params={"client_order_id": "f5"})
    assert log["count"] == 1 and log["requests"][0]["outcome"] == "fault-5xx-before"
    assert ex.fetch_open_orders("BTC/USDT") == []  # not executed


def test_5xx_after_execute_creates_the_order(ex: Any, sim: RunningSim) -> None:
    ex.load_markets()
    sim.admin("POST", "/sim/faults", json={"error_after_rate": 1.0, "error_body": "json"})
    bid, _ = best(sim)
    with pytest.raises(ccxt.OperationFailed) as info:
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100), {"clientOrderId": "f6"})
    assert isinstance(info.value, ccxt.OperationFailed)
    sim.admin("POST", "/sim/faults", json={"reset": True})
    entry = sim.admin("GET", "/sim/requests", params={"client_order_id": "f6"})["requests"][0]
    assert entry["outcome"] == "fault-5xx-after-execute"
    assert entry["executed_outcome"] == "accepted"
    assert ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "f6"})["status"] == "open"


def test_injected_reject(ex: Any, sim: RunningSim) -> None:
    ex.load_markets()
    sim.admin("POST", "/sim/faults", json={"reject_rate": 1.0})
    bid, _ = best(sim)
    with pytest.raises(ccxt.InvalidOrder):
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100))
    sim.admin("POST", "/sim/faults", json={"reject_code": -1013})
    with pytest.raises(ccxt.InvalidOrder):  # "Filter failure: PERCENT_PRICE_BY_SIDE"
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100))


def test_429_storm_and_418_ban(ex: Any, sim: RunningSim) -> None:
    ex.load_markets()
    sim.admin("POST", "/sim/faults", json={"rate_limit_storm_s": 30})
    with pytest.raises(ccxt.DDoSProtection) as info:
        ex.fetch_ticker("BTC/USDT")
    assert isinstance(info.value, ccxt.NetworkError)
    assert "429" in str(info.value)
    assert ex.last_response_headers["Retry-After"] in {"29", "30"}
    sim.admin("POST", "/sim/faults", json={"rate_limit_storm_s": 0, "ban_s": 60})
    with pytest.raises(ccxt.DDoSProtection) as info:
        ex.fetch_balance()
    assert "418" in str(info.value)
    sim.admin("POST", "/sim/faults", json={"ban_s": 0})
    assert ex.fetch_ticker("BTC/USDT")["symbol"] == "BTC/USDT"


def test_weight_limit_429(sim: RunningSim) -> None:
    ex = ccxt_client(sim)
    ex.load_markets()
    sim.call(lambda: setattr(sim.sim.config, "weight_limit_1m", 60))
    try:
        with pytest.raises(ccxt.DDoSProtection):
            for _ in range(20):
                ex.fetch_order_book("BTC/USDT")
        assert "-1003" in ex.last_http_response
        assert int(ex.last_response_headers["X-MBX-USED-WEIGHT-1M"]) > 60
    finally:
        sim.call(lambda: setattr(sim.sim.config, "weight_limit_1m", 6000))


def test_timeout_fault_is_request_timeout(sim: RunningSim) -> None:
    ex = ccxt_client(sim, timeout=500)
    ex.load_markets()
    sim.admin("POST", "/sim/faults", json={"timeout_after_rate": 1.0, "timeout_ms": 1500})
    bid, _ = best(sim)
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100), {"clientOrderId": "t1"})
    sim.admin("POST", "/sim/faults", json={"reset": True})
    entry = sim.admin("GET", "/sim/requests", params={"client_order_id": "t1"})["requests"][0]
    assert entry["outcome"] == "fault-timeout-after-execute"
    assert ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "t1"})["status"] == "open"


@pytest.mark.parametrize("after", [False, True])
def test_dropped_connection_is_network_error(sim: RunningSim, after: bool) -> None:
    ex = ccxt_client(sim)
    ex.load_markets()
    key = "drop_after_rate" if after else "drop_rate"
    sim.admin("POST", "/sim/faults", json={key: 1.0})
    bid, _ = best(sim)
    cid = f"drop-{after}"
    with pytest.raises(ccxt.NetworkError):
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100), {"clientOrderId": cid})
    sim.admin("POST", "/sim/faults", json={"reset": True})
    entry = sim.admin("GET", "/sim/requests", params={"client_order_id": cid})["requests"][0]
    assert entry["outcome"] == ("fault-drop-after-execute" if after else "fault-drop-before")
    opened = ex.fetch_open_orders("BTC/USDT")
    assert [o["clientOrderId"] for o in opened] == ([cid] if after else [])


# ---------------------------------------------------------------------- async ccxt


def test_async_ccxt_round_trip(sim: RunningSim) -> None:
    async def run() -> None:
        ex = async_ccxt_client(sim)
        try:
            await ex.load_markets()
            book = await ex.fetch_order_book("ETH/USDT")
            bid = book["bids"][0][0]
            order = await ex.create_order(
                "ETH/USDT", "limit", "buy", 0.1, bid - 10, {"clientOrderId": "async-1"}
            )
            assert order["status"] == "open"
            got = await ex.fetch_order(None, "ETH/USDT", {"origClientOrderId": "async-1"})
            assert got["id"] == order["id"]
            assert (await ex.cancel_order(order["id"], "ETH/USDT"))["status"] == "canceled"
            with pytest.raises(ccxt.OrderNotFound):
                await ex.cancel_order(order["id"], "ETH/USDT")
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.create_order("ETH/USDT", "limit", "sell", 2000, bid + 100)
            sim.admin("POST", "/sim/faults", json={"drop_rate": 1.0, "scope": "signed"})
            with pytest.raises(ccxt.NetworkError):
                await ex.fetch_open_orders("ETH/USDT")
            sim.admin("POST", "/sim/faults", json={"reset": True, "error_rate": 1.0})
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await ex.cancel_all_orders("ETH/USDT")
        finally:
            await ex.close()

    asyncio.run(run())


def test_concurrent_requests_are_not_serialized(sim: RunningSim) -> None:
    sim.admin("POST", "/sim/faults", json={"latency_ms": 200, "scope": "all"})

    async def run() -> float:
        ex = async_ccxt_client(sim)
        try:
            await ex.load_markets()
            bid = (await ex.fetch_order_book("BTC/USDT"))["bids"][0][0]
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            calls = []
            for i in range(50):
                if i % 2:
                    calls.append(ex.fetch_ticker("BTC/USDT"))
                else:
                    calls.append(
                        ex.create_order(
                            "BTC/USDT",
                            "limit",
                            "buy",
                            0.001,
                            bid - 200 - i,
                            {"clientOrderId": f"cc-{i}"},
                        )
                    )
            results = await asyncio.gather(*calls)
            assert len(results) == 50
            return loop.time() - t0
        finally:
            await ex.close()

    elapsed = asyncio.run(run())
    assert elapsed < 2.0, f"50 x 200 ms took {elapsed:.2f}s"
    assert sim.admin("GET", "/sim/requests", params={"kind": "new"})["count"] == 25


def test_edit_order_is_a_definite_rejection(ex: Any, sim: RunningSim) -> None:
    bid, _ = best(sim)
    order = ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(bid - 100))
    with pytest.raises(ccxt.BadRequest) as info:
        ex.edit_order(order["id"], "BTC/USDT", "limit", "buy", 0.01, float(bid - 101))
    assert "-1020" in str(info.value)
    assert ex.fetch_order(order["id"], "BTC/USDT")["status"] == "open"


def test_fetch_trades_and_open_orders_without_symbol(ex: Any, sim: RunningSim) -> None:
    _, ask = best(sim)
    ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(ask))
    trades = ex.fetch_trades("BTC/USDT")
    assert len(trades) == 1 and trades[0]["price"] == float(ask)
    bid, _ = best(sim, "ETHUSDT")
    ex.create_order("ETH/USDT", "limit", "buy", 0.1, float(bid - 10))
    ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(ask - 500))
    assert {o["symbol"] for o in ex.fetch_open_orders()} == {"BTC/USDT", "ETH/USDT"}


def test_ioc_and_fok_through_ccxt(ex: Any, sim: RunningSim) -> None:
    bid, ask = best(sim)
    ioc = ex.create_order(
        "BTC/USDT", "limit", "buy", 0.01, float(bid - 100), {"timeInForce": "IOC"}
    )
    assert ioc["status"] == "expired" and ioc["filled"] == 0
    depth = ex.fetch_order_book("BTC/USDT", limit=1)
    top = depth["asks"][0][1]
    fok = ex.create_order("BTC/USDT", "limit", "buy", top + 0.5, float(ask), {"timeInForce": "FOK"})
    assert fok["status"] == "expired" and fok["filled"] == 0
    part = ex.create_order(
        "BTC/USDT", "limit", "buy", top + 0.5, float(ask), {"timeInForce": "IOC"}
    )
    assert part["status"] == "expired" and part["filled"] == pytest.approx(top)
    log = sim.admin("GET", "/sim/requests", params={"kind": "new"})["requests"]
    assert [e["order_status"] for e in log] == ["EXPIRED", "EXPIRED", "EXPIRED"]
    assert all(e["account"] == "default" for e in log)
