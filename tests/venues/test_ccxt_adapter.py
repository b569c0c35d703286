"""The ccxt adapter against the real simulated exchange, over real HTTP on 127.0.0.1.

One simulator subprocess per module (``python -m venues.sim``, market paused so the
book is static), reset before every test.
"""

from __future__ import annotations

import asyncio
import decimal
import json
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

import ccxt
import pytest

from venues import registry
from venues.base import (
    OrderRequest,
    VenueInDoubt,
    VenueOrderNotFound,
    VenueOrderStatus,
    VenueRateLimited,
    VenueRejected,
)
from venues.ccxt_adapter import CcxtAdapter, VenueConfig, build_exchange

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = "test-key", "test-secret"
BTC = "BTC/USDT"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(base_url: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base_url + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def sim_url():
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "venues.sim",
            "--name",
            "test-sim",
            "--port",
            str(port),
            "--paused",
            "--seed",
            "7",
            "--api-key",
            KEY,
            "--api-secret",
            SECRET,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if _admin(url, "/sim/health")["status"] == "ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start: {proc.stderr.read().decode()}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def sim(sim_url):
    _admin(sim_url, "/sim/reset", {})
    return sim_url


def _config(url: str, **kw) -> VenueConfig:
    return VenueConfig(
        name="sim-test",
        exchange_id="binance",
        base_url=url,
        api_key=kw.pop("api_key", KEY),
        secret=kw.pop("secret", SECRET),
        timeout_ms=kw.pop("timeout_ms", 2000),
        **kw,
    )


@pytest.fixture
def adapter(sim):
    a = CcxtAdapter(_config(sim))
    yield a
    a.close()


def _limit(cid: str, side: str, qty: str, price, tif: str = "GTC") -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol=BTC,
        side=side,
        type="limit",
        quantity=D(qty),
        price=D(str(price)),
        time_in_force=tif,
    )


def _best(adapter: CcxtAdapter) -> tuple[D, D]:
    book = adapter.fetch_order_book(BTC, 5)
    return book.best_bid, book.best_ask


def _house(url: str, side: str, qty: str, price: D) -> dict:
    return _admin(
        url,
        "/sim/orders",
        {
            "account": "__house__",
            "symbol": BTC,
            "side": side.upper(),
            "type": "LIMIT",
            "quantity": qty,
            "price": str(price),
            "timeInForce": "GTC",
        },
    )


# ---------------------------------------------------------------- submit / fetch / cancel


def test_submit_limit_away_from_market_then_rests_as_new(adapter):
    bid, _ = _best(adapter)

    order = adapter.submit_order(_limit("rest-1", "buy", "0.01", bid - 500))

    assert order.status == VenueOrderStatus.NEW
    assert order.client_order_id == "rest-1"
    assert order.venue_order_id
    assert order.quantity == D("0.01")
    assert order.price == bid - 500
    assert order.filled_quantity == 0
    assert order.trades == ()
    assert order.timestamp is not None and order.timestamp.tzinfo is not None
    assert adapter.last_used_weight() is not None


def test_submit_crossing_limit_then_filled_with_trades(adapter):
    _, ask = _best(adapter)

    order = adapter.submit_order(_limit("cross-1", "buy", "0.01", ask + 50))

    assert order.status == VenueOrderStatus.FILLED
    assert order.filled_quantity == D("0.01")
    assert order.average_price == ask
    assert len(order.trades) == 1
    trade = order.trades[0]
    assert (trade.side, trade.quantity, trade.price) == ("buy", D("0.01"), ask)
    assert trade.venue_order_id == order.venue_order_id
    assert trade.is_maker is False
    assert trade.fee > 0 and trade.fee_currency == "BTC"
    assert trade.timestamp.tzinfo is UTC


def test_submit_market_order_then_filled(adapter):
    order = adapter.submit_order(
        OrderRequest(
            client_order_id="mkt-1", symbol=BTC, side="sell", type="market", quantity=D("0.02")
        )
    )

    assert order.status == VenueOrderStatus.FILLED
    assert order.price is None
    assert sum(t.quantity for t in order.trades) == D("0.02")


def test_submit_same_client_order_id_twice_then_existing_order_returned(adapter, sim):
    bid, _ = _best(adapter)
    first = adapter.submit_order(_limit("dup-1", "buy", "0.01", bid - 500))

    again = adapter.submit_order(_limit("dup-1", "buy", "0.01", bid - 500))

    assert again.venue_order_id == first.venue_order_id
    assert len(adapter.fetch_open_orders(BTC)) == 1


def test_fetch_order_by_client_order_id(adapter):
    bid, ask = _best(adapter)
    resting = adapter.submit_order(_limit("f-1", "buy", "0.01", bid - 100))
    adapter.submit_order(_limit("f-2", "buy", "0.01", ask + 10))

    got = adapter.fetch_order(symbol=BTC, client_order_id="f-1")
    filled = adapter.fetch_order(symbol=BTC, client_order_id="f-2")

    assert got.venue_order_id == resting.venue_order_id
    assert got.status == VenueOrderStatus.NEW
    assert got.client_order_id == "f-1"
    assert filled.status == VenueOrderStatus.FILLED


def test_cancel_by_client_order_id(adapter):
    bid, _ = _best(adapter)
    adapter.submit_order(_limit("c-1", "buy", "0.01", bid - 100))

    canceled = adapter.cancel_order(symbol=BTC, client_order_id="c-1")

    assert canceled.status == VenueOrderStatus.CANCELED
    assert canceled.client_order_id == "c-1"  # not the cancel request's own id
    assert adapter.fetch_order(symbol=BTC, client_order_id="c-1").status == "CANCELED"
    assert adapter.fetch_open_orders(BTC) == []


def test_cancel_by_venue_order_id(adapter):
    bid, _ = _best(adapter)
    order = adapter.submit_order(_limit("cv-1", "buy", "0.01", bid - 100))

    canceled = adapter.cancel_order(
        symbol=BTC, client_order_id="cv-1", venue_order_id=order.venue_order_id
    )

    assert canceled.status == VenueOrderStatus.CANCELED


def test_cancel_unknown_then_not_found(adapter):
    with pytest.raises(VenueOrderNotFound) as err:
        adapter.cancel_order(symbol=BTC, client_order_id="never-sent")
    assert err.value.code == "-2011"


def test_fetch_unknown_then_not_found(adapter):
    with pytest.raises(VenueOrderNotFound) as err:
        adapter.fetch_order(symbol=BTC, client_order_id="never-sent")
    assert err.value.code == "-2013"


# ---------------------------------------------------------------- rejections


def test_submit_when_balance_insufficient_then_rejected_with_reason(adapter, sim):
    _admin(sim, "/sim/balances", {"balances": {"USDT": "10"}})
    bid, _ = _best(adapter)

    with pytest.raises(VenueRejected) as err:
        adapter.submit_order(_limit("poor-1", "buy", "0.01", bid - 100))

    assert "insufficient balance" in err.value.reason.lower()
    assert err.value.code == "-2010"


def test_submit_when_notional_below_minimum_then_rejected_with_filter_reason(adapter):
    bid, _ = _best(adapter)

    with pytest.raises(VenueRejected) as err:
        adapter.submit_order(_limit("tiny-1", "buy", "0.00001", bid - 100))

    assert "filter failure" in err.value.reason.lower()
    assert err.value.code == "-1013"


def test_submit_when_price_off_tick_then_rejected_not_rounded(adapter, sim):
    bid, _ = _best(adapter)

    with pytest.raises(VenueRejected) as err:
        adapter.submit_order(_limit("tick-1", "buy", "0.01", bid - D("100.005")))

    assert err.value.code == "PRECISION"
    assert _admin(sim, "/sim/requests")["count"] == 0  # nothing was sent


def test_submit_unknown_symbol_then_rejected(adapter):
    with pytest.raises(VenueRejected):
        adapter.submit_order(OrderRequest("sym-1", "DOGE/USDT", "buy", "limit", D("1"), D("0.1")))


def test_submit_with_wrong_secret_then_rejected(sim):
    a = CcxtAdapter(_config(sim, secret="wrong"))
    with pytest.raises(VenueRejected) as err:
        a.submit_order(_limit("auth-1", "buy", "0.01", "50000"))
    assert err.value.code == "-1022"


def test_injected_venue_reject_then_rejected(adapter, sim):
    _admin(sim, "/sim/faults", {"reject_rate": 1.0, "reject_code": -2010})
    with pytest.raises(VenueRejected) as err:
        adapter.submit_order(_limit("rej-1", "buy", "0.01", "50000"))
    assert err.value.code == "-2010"


# ---------------------------------------------------------------- amend (cancel-replace)


def test_amend_price_via_cancel_replace(adapter):
    bid, _ = _best(adapter)
    old = adapter.submit_order(_limit("a-1", "buy", "0.02", bid - 200))

    new = adapter.amend_order(
        symbol=BTC,
        client_order_id="a-1",
        venue_order_id=old.venue_order_id,
        new_client_order_id="a-1-r1",
        side="buy",
        quantity=D("0.02"),
        price=bid - 150,
    )

    assert adapter.capabilities().native_amend is False
    assert new.client_order_id == "a-1-r1"
    assert (new.status, new.price, new.quantity) == (VenueOrderStatus.NEW, bid - 150, D("0.02"))
    assert adapter.fetch_order(symbol=BTC, client_order_id="a-1").status == "CANCELED"
    assert [o.client_order_id for o in adapter.fetch_open_orders(BTC)] == ["a-1-r1"]


def test_amend_quantity_after_partial_fill_then_new_order_for_the_rest(adapter, sim):
    bid, ask = _best(adapter)
    price = (bid + ask) / 2  # inside the spread: our sell is alone at the best ask
    adapter.submit_order(_limit("p-1", "sell", "0.03", price))
    _house(sim, "buy", "0.01", price)  # fills 0.01 of ours
    assert adapter.fetch_order(symbol=BTC, client_order_id="p-1").filled_quantity == D("0.01")

    new = adapter.amend_order(
        symbol=BTC,
        client_order_id="p-1",
        venue_order_id=None,
        new_client_order_id="p-1-r1",
        side="sell",
        quantity=D("0.05"),  # new total
        price=None,  # keep the price
    )

    assert new.quantity == D("0.04")  # 0.05 total - 0.01 already filled
    assert new.price == price
    old = adapter.fetch_order(symbol=BTC, client_order_id="p-1")
    assert (old.status, old.filled_quantity) == (VenueOrderStatus.CANCELED, D("0.01"))


def test_amend_when_old_order_already_filled_then_rejected(adapter):
    _, ask = _best(adapter)
    adapter.submit_order(_limit("af-1", "buy", "0.01", ask + 10))

    with pytest.raises(VenueRejected, match="order already filled"):
        adapter.amend_order(
            symbol=BTC,
            client_order_id="af-1",
            venue_order_id=None,
            new_client_order_id="af-1-r1",
            side="buy",
            quantity=D("0.02"),
            price=ask,
        )
    with pytest.raises(VenueOrderNotFound):
        adapter.fetch_order(symbol=BTC, client_order_id="af-1-r1")


def test_amend_when_cancel_is_in_doubt_then_nothing_new_is_placed(adapter, sim):
    bid, _ = _best(adapter)
    adapter.submit_order(_limit("ad-1", "buy", "0.01", bid - 100))
    _admin(sim, "/sim/faults", {"error_rate": 1.0})

    with pytest.raises(VenueInDoubt):
        adapter.amend_order(
            symbol=BTC,
            client_order_id="ad-1",
            venue_order_id=None,
            new_client_order_id="ad-1-r1",
            side="buy",
            quantity=D("0.01"),
            price=bid - 50,
        )

    _admin(sim, "/sim/faults", {"reset": True})
    new_requests = _admin(sim, "/sim/requests?kind=new")["requests"]
    assert [r["clientOrderId"] for r in new_requests] == ["ad-1"]


# ---------------------------------------------------------------- trades, book, balances


def test_fetch_trades_since_cursor(adapter):
    _, ask = _best(adapter)
    adapter.submit_order(_limit("t-1", "buy", "0.01", ask + 10))
    first = adapter.fetch_trades(symbol=BTC)
    time.sleep(0.01)
    second_order = adapter.submit_order(_limit("t-2", "buy", "0.02", ask + 10))
    cursor = int(second_order.trades[0].timestamp.timestamp() * 1000)

    everything = adapter.fetch_trades(symbol=BTC, since_ms=0)
    since = adapter.fetch_trades(symbol=BTC, since_ms=cursor)

    assert len(first) == 1 and first[0].quantity == D("0.01")
    assert len(everything) >= 2
    assert [t.timestamp for t in everything] == sorted(t.timestamp for t in everything)
    assert {t.venue_order_id for t in since} == {second_order.venue_order_id}
    trade = since[0]
    assert trade.side == "buy" and trade.is_maker is False
    assert trade.fee_currency == "BTC" and trade.fee > 0
    assert isinstance(trade.timestamp, datetime) and trade.timestamp.tzinfo is not None


def test_fetch_trades_when_maker_then_flagged(adapter, sim):
    bid, ask = _best(adapter)
    price = (bid + ask) / 2
    adapter.submit_order(_limit("m-1", "sell", "0.01", price))
    _house(sim, "buy", "0.01", price)

    trades = adapter.fetch_trades(symbol=BTC)

    assert [(t.side, t.is_maker, t.price) for t in trades] == [("sell", True, price)]


def test_fetch_order_book(adapter):
    book = adapter.fetch_order_book(BTC, depth=5)

    assert book.symbol == BTC
    assert 0 < len(book.bids) <= 5 and 0 < len(book.asks) <= 5
    assert book.best_bid < book.best_ask
    assert [lvl.price for lvl in book.bids] == sorted(
        (lvl.price for lvl in book.bids), reverse=True
    )
    assert all(isinstance(lvl.quantity, D) and lvl.quantity > 0 for lvl in book.asks)


def test_fetch_balances_and_locked_funds(adapter):
    before = adapter.fetch_balances()
    bid, _ = _best(adapter)
    price = bid - 100
    adapter.submit_order(_limit("b-1", "buy", "0.01", price))

    after = adapter.fetch_balances()

    assert before["USDT"].free == D("1000000") and before["USDT"].used == 0
    assert after["USDT"].used == price * D("0.01")
    assert after["USDT"].total == before["USDT"].total
    assert after["BTC"].free == D("100")


def test_cancel_all(adapter):
    bid, _ = _best(adapter)
    adapter.submit_order(_limit("all-1", "buy", "0.01", bid - 100))
    adapter.submit_order(_limit("all-2", "buy", "0.01", bid - 200))

    canceled = adapter.cancel_all(BTC)

    assert adapter.capabilities().cancel_all is True
    assert sorted(o.client_order_id for o in canceled) == ["all-1", "all-2"]
    assert all(o.status == VenueOrderStatus.CANCELED for o in canceled)
    assert adapter.fetch_open_orders() == []
    assert adapter.cancel_all(BTC) == []  # the venue answers -2011 when nothing is open


# ---------------------------------------------------------------- in doubt / rate limits


def test_submit_when_venue_answers_5xx_then_in_doubt(adapter, sim):
    _admin(sim, "/sim/faults", {"error_rate": 1.0})
    with pytest.raises(VenueInDoubt):
        adapter.submit_order(_limit("5xx-1", "buy", "0.01", "50000"))

    _admin(sim, "/sim/faults", {"reset": True, "error_rate": 1.0, "error_body": "text"})
    with pytest.raises(VenueInDoubt):
        adapter.submit_order(_limit("5xx-2", "buy", "0.01", "50000"))


def test_submit_when_5xx_after_execute_then_in_doubt_and_found_by_client_id(adapter, sim):
    _admin(sim, "/sim/faults", {"error_after_rate": 1.0})
    with pytest.raises(VenueInDoubt):
        adapter.submit_order(_limit("5xa-1", "buy", "0.01", "50000"))
    _admin(sim, "/sim/faults", {"reset": True})

    found = adapter.fetch_order(symbol=BTC, client_order_id="5xa-1")

    assert found.status == VenueOrderStatus.NEW


def test_submit_when_venue_times_out_then_in_doubt(sim):
    a = CcxtAdapter(_config(sim, timeout_ms=300))
    a.refresh_markets()
    _admin(sim, "/sim/faults", {"timeout_rate": 1.0, "timeout_ms": 1500})
    started = time.monotonic()

    with pytest.raises(VenueInDoubt):
        a.submit_order(_limit("to-1", "buy", "0.01", "50000"))

    assert time.monotonic() - started < 1.5


def test_submit_when_connection_dropped_then_in_doubt(adapter, sim):
    adapter.refresh_markets()
    _admin(sim, "/sim/faults", {"drop_rate": 1.0})
    with pytest.raises(VenueInDoubt):
        adapter.submit_order(_limit("drop-1", "buy", "0.01", "50000"))


def test_when_venue_unreachable_then_in_doubt():
    a = CcxtAdapter(_config(f"http://127.0.0.1:{_free_port()}", timeout_ms=500))
    with pytest.raises(VenueInDoubt):
        a.fetch_balances()
    assert a.capabilities().markets == ()  # capabilities never fail


def test_when_429_then_rate_limited_with_retry_after(adapter, sim):
    adapter.refresh_markets()
    _admin(sim, "/sim/faults", {"rate_limit_storm_s": 5})

    with pytest.raises(VenueRateLimited) as err:
        adapter.submit_order(_limit("rl-1", "buy", "0.01", "50000"))

    assert err.value.retry_after is not None and 0 < err.value.retry_after <= 5
    assert err.value.banned is False
    assert err.value.code == "-1003"


def test_when_418_then_rate_limited_and_banned(adapter, sim):
    adapter.refresh_markets()
    _admin(sim, "/sim/faults", {"ban_s": 5})

    with pytest.raises(VenueRateLimited) as err:
        adapter.fetch_balances()

    assert err.value.banned is True
    assert err.value.retry_after is not None and err.value.retry_after > 0


# ---------------------------------------------------------------- error mapping table


def _raising(adapter: CcxtAdapter, exc: Exception, status=None, body=None, headers=None):
    def boom():
        adapter._status = status
        adapter._body = body
        adapter._headers = headers or {}
        raise exc

    return boom


@pytest.mark.parametrize(
    ("exc", "status", "body", "expected"),
    [
        (ccxt.InsufficientFunds("x"), 400, '{"code":-2010,"msg":"no money"}', VenueRejected),
        (ccxt.InvalidOrder("x"), 400, None, VenueRejected),
        (ccxt.OrderImmediatelyFillable("x"), 400, None, VenueRejected),
        (ccxt.BadSymbol("x"), 400, None, VenueRejected),
        (ccxt.BadRequest("x"), 400, None, VenueRejected),
        (ccxt.PermissionDenied("x"), 400, None, VenueRejected),
        (ccxt.AuthenticationError("x"), 401, None, VenueRejected),
        (ccxt.AccountSuspended("x"), 400, None, VenueRejected),
        (ccxt.MarketClosed("x"), 400, None, VenueRejected),
        (ccxt.NotSupported("x"), None, None, VenueRejected),
        (ccxt.OrderNotFound("x"), 400, None, VenueOrderNotFound),
        (ccxt.RateLimitExceeded("x"), 429, None, VenueRateLimited),
        (ccxt.DDoSProtection("x"), 418, None, VenueRateLimited),
        (ccxt.RequestTimeout("x"), None, None, VenueInDoubt),
        (ccxt.ExchangeNotAvailable("x"), 503, None, VenueInDoubt),
        (ccxt.OnMaintenance("x"), 503, None, VenueInDoubt),
        (ccxt.NetworkError("x"), None, None, VenueInDoubt),
        (ccxt.InvalidNonce("x"), 400, None, VenueInDoubt),
        (ccxt.OperationFailed("x"), 500, None, VenueInDoubt),
        (ccxt.BadResponse("x"), 200, None, VenueInDoubt),
        (ccxt.ExchangeError("x"), 500, '{"code":-1,"msg":"boom"}', VenueInDoubt),
        (ccxt.ExchangeError("x"), None, None, VenueInDoubt),
        (ccxt.ExchangeError("x"), 400, '{"code":-9999,"msg":"nope"}', VenueRejected),
        (ccxt.ExchangeError("x"), 400, "not json", VenueInDoubt),
        (ValueError("parser blew up"), 200, None, VenueInDoubt),
    ],
)
def test_error_mapping(exc, status, body, expected):
    a = CcxtAdapter(_config("http://127.0.0.1:9"))

    with pytest.raises(expected) as err:
        a._call(_raising(a, exc, status, body))

    assert type(err.value) is expected


def test_error_mapping_keeps_venue_code_message_and_retry_after():
    a = CcxtAdapter(_config("http://127.0.0.1:9"))
    body = '{"code":-1003,"msg":"Too much request weight used"}'

    with pytest.raises(VenueRateLimited) as err:
        a._call(_raising(a, ccxt.DDoSProtection("x"), 418, body, {"retry-after": "12"}))
    with pytest.raises(VenueRejected) as rejected:
        a._call(_raising(a, ccxt.InsufficientFunds("x"), 400, '{"code":-2010,"msg":"m"}'))

    assert (err.value.retry_after, err.value.banned, err.value.code) == (12.0, True, "-1003")
    assert "Too much request weight used" in err.value.reason
    assert (rejected.value.reason, rejected.value.code) == ("m", "-2010")


# ---------------------------------------------------------------- configuration


def test_only_spot_urls_are_configured_and_others_fail_locally(sim):
    exchange = build_exchange(_config(sim))

    assert exchange.urls["api"] == {
        "public": f"{sim}/api/v3",
        "private": f"{sim}/api/v3",
        "v1": f"{sim}/api/v1",
    }
    assert exchange.enableRateLimit is False
    with pytest.raises(ccxt.NotSupported):
        exchange.sapi_get_system_status()
    with pytest.raises(ccxt.NotSupported):
        exchange.fapipublic_get_exchangeinfo()


def test_markets_load_once_and_refresh_when_old(sim):
    now = [1000.0]
    a = CcxtAdapter(_config(sim, markets_max_age_s=60), clock=lambda: now[0])
    calls = []
    original = a.exchange.load_markets
    a.exchange.load_markets = lambda *args, **kw: calls.append(args) or original(*args, **kw)

    a.fetch_order_book(BTC)
    a.fetch_balances()
    now[0] += 61
    a.fetch_order_book(BTC)

    assert len(calls) == 2


def test_calls_leave_the_callers_decimal_context_alone(adapter):
    before = decimal.getcontext().copy()
    adapter.submit_order(_limit("ctx-1", "buy", "0.01", "50000"))
    after = decimal.getcontext()
    assert (after.rounding, after.traps) == (before.rounding, before.traps)


# ---------------------------------------------------------------- registry


def _row(**kw):
    fields = {
        "name": "sim-a",
        "driver": "sim",
        "exchange_id": "",
        "base_url": "http://127.0.0.1:9",
        "api_key_env": "",
        "secret_env": "",
    }
    fields.update(kw)
    return SimpleNamespace(**fields)


def test_registry_caches_per_venue_and_resets():
    registry.reset_adapters()
    row = _row()

    first = registry.adapter_for(row)
    again = registry.adapter_for(_row())
    other = registry.adapter_for(_row(base_url="http://127.0.0.1:10"))
    registry.reset_adapters()
    fresh = registry.adapter_for(row)

    assert first is again
    assert other is not first
    assert fresh is not first
    assert first.config.exchange_id == "binance"
    from venues.sim.server import DEFAULT_API_KEY

    assert first.config.api_key == DEFAULT_API_KEY
    registry.reset_adapters()


def test_registry_reads_credentials_from_named_env_vars(monkeypatch):
    registry.reset_adapters()
    monkeypatch.setenv("OMS_VENUE_SIM_A_KEY", "k1")
    monkeypatch.setenv("OMS_VENUE_SIM_A_SECRET", "s1")

    adapter = registry.adapter_for(
        _row(
            driver="ccxt",
            exchange_id="binance",
            api_key_env="OMS_VENUE_SIM_A_KEY",
            secret_env="OMS_VENUE_SIM_A_SECRET",
        )
    )

    assert (adapter.config.api_key, adapter.config.secret) == ("k1", "s1")
    assert "k1" not in repr(adapter.config) and "s1" not in repr(adapter.config)
    registry.reset_adapters()


def test_registry_when_env_var_missing_or_driver_unknown_then_config_error(monkeypatch):
    registry.reset_adapters()
    monkeypatch.delenv("OMS_VENUE_SIM_A_KEY", raising=False)
    with pytest.raises(registry.VenueConfigError, match="OMS_VENUE_SIM_A_KEY"):
        registry.adapter_for(_row(api_key_env="OMS_VENUE_SIM_A_KEY"))
    with pytest.raises(registry.VenueConfigError, match="driver"):
        registry.adapter_for(_row(driver="fox"))
    with pytest.raises(registry.VenueConfigError, match="fix_host"):
        registry.adapter_for(_row(driver="fix"))  # a fix venue without its FIX fields
    with pytest.raises(registry.VenueConfigError, match="exchange_id"):
        registry.adapter_for(_row(driver="ccxt"))


def test_registry_sim_adapter_trades_with_the_simulator(sim, monkeypatch):
    registry.reset_adapters()
    monkeypatch.setenv("OMS_VENUE_SIM_A_KEY", KEY)
    monkeypatch.setenv("OMS_VENUE_SIM_A_SECRET", SECRET)
    adapter = registry.adapter_for(
        _row(base_url=sim, api_key_env="OMS_VENUE_SIM_A_KEY", secret_env="OMS_VENUE_SIM_A_SECRET")
    )

    order = adapter.submit_order(_limit("reg-1", "buy", "0.01", "50000"))

    assert order.status == VenueOrderStatus.NEW
    registry.reset_adapters()


# ---------------------------------------------------------------- ccxt async client


def test_same_configuration_works_with_ccxt_async_client(sim):
    async def flow():
        exchange = build_exchange(_config(sim), async_client=True)
        try:
            await exchange.load_markets()
            book = await exchange.fetch_order_book(BTC, 5)
            bid, ask = D(str(book["bids"][0][0])), D(str(book["asks"][0][0]))
            resting = await exchange.create_order(
                BTC, "limit", "buy", 0.01, float(bid - 100), {"newClientOrderId": "as-1"}
            )
            filled = await exchange.create_order(
                BTC, "limit", "buy", 0.01, float(ask + 10), {"newClientOrderId": "as-2"}
            )
            fetched = await exchange.fetch_order("", BTC, {"origClientOrderId": "as-1"})
            canceled = await exchange.cancel_order("", BTC, {"origClientOrderId": "as-1"})
            trades = await exchange.fetch_my_trades(BTC)
            balance = await exchange.fetch_balance()
            with pytest.raises(ccxt.OrderNotFound):
                await exchange.fetch_order("", BTC, {"origClientOrderId": "nope"})
            return resting, filled, fetched, canceled, trades, balance
        finally:
            await exchange.close()

    resting, filled, fetched, canceled, trades, balance = asyncio.run(
        asyncio.wait_for(flow(), timeout=20)
    )

    assert resting["clientOrderId"] == "as-1" and resting["status"] == "open"
    assert filled["status"] == "closed" and filled["info"]["fills"]
    assert fetched["id"] == resting["id"]
    assert canceled["status"] == "canceled"
    assert [t["order"] for t in trades] == [filled["id"]]
    assert balance["BTC"]["total"] > 100
