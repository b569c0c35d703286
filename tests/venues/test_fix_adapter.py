"""The fix driver's adapter against real processes: the simulated exchange with its FIX
port, the FIX session process (``python -m venues.fix_session``) and the test Redis.
The contract's calls over FIX 4.4, the errors normalised as the pipeline expects."""

from __future__ import annotations

import os
import sys
from decimal import Decimal as D

import pytest
import requests

from omsweb.stack import Proc, free_port, wait_for
from venues.base import (
    OrderRequest,
    VenueInDoubt,
    VenueOrderNotFound,
    VenueOrderStatus,
    VenueRejected,
    VenueUnavailable,
)
from venues.fix_adapter import FixAdapter

KEY, SECRET = "fix-key", "fix-secret"
VENUE = "fixtest"


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    import redis

    home = tmp_path_factory.mktemp("fixvenue")
    port, fix_port = free_port(), free_port()
    sim_log, session_log = home / "simex.log", home / "session.log"
    sim = Proc(
        [sys.executable, "-m", "venues.sim", "--name", "fixtest", "--port", str(port),
         "--paused", "--api-key", KEY, "--api-secret", SECRET, "--fix-port", str(fix_port),
         "--fix-store", str(home / "simfix")],
        {}, sim_log,
    )  # fmt: skip
    env = {**os.environ, "OMS_VENUE_FIXTEST_KEY": KEY, "OMS_VENUE_FIXTEST_SECRET": SECRET}
    url = os.environ["REDIS_URL"]
    procs: dict[str, Proc] = {}
    try:
        wait_for(lambda: "acceptor on" in sim_log.read_text() or not sim.alive(), timeout=60)
        procs["session"] = Proc(
            [sys.executable, "-m", "venues.fix_session", "--venue", VENUE, "--port",
             str(fix_port), "--sender", "OMS", "--target", "SIMEX", "--store",
             str(home / "session"), "--redis-url", url],
            env, session_log,
        )  # fmt: skip
        client = redis.Redis.from_url(url, socket_timeout=30)
        adapter = FixAdapter(VENUE, client, timeout_s=3.0)
        wait_for(lambda: client.exists(adapter.keys.session), timeout=30)
        yield adapter, f"http://127.0.0.1:{port}", procs
    finally:
        if "session" in procs:
            procs["session"].stop()
        sim.stop()


def request(cid: str, price: str = "50000.00", tif: str = "GTC", qty: str = "0.01"):
    return OrderRequest(
        client_order_id=cid, symbol="BTC/USDT", side="buy", type="limit",
        quantity=D(qty), price=D(price), time_in_force=tif,
    )  # fmt: skip


def open_at_sim(base: str) -> list[str]:
    state = requests.get(f"{base}/sim/state", timeout=5).json()
    return [o["clientOrderId"] for o in state["open_orders"].get("default", [])]


def test_submit_resting_then_new_and_listed_by_mass_status(venue):
    adapter, base, _ = venue
    order = adapter.submit_order(request("a-rest"))
    assert (order.status, order.client_order_id, order.filled_quantity) == (
        VenueOrderStatus.NEW,
        "a-rest",
        D(0),
    )
    assert order.venue_order_id and "a-rest" in open_at_sim(base)
    listed = {o.client_order_id: o for o in adapter.fetch_open_orders("BTC/USDT")}
    assert listed["a-rest"].venue_order_id == order.venue_order_id
    assert "a-rest" in {o.client_order_id for o in adapter.fetch_open_orders()}


def test_crossing_submit_then_filled_with_trade_ids_and_trades_recorded(venue):
    adapter, _, _ = venue
    order = adapter.submit_order(request("a-cross", price="90000.00", tif="IOC"))
    assert order.status == VenueOrderStatus.FILLED and order.filled_quantity == D("0.01")
    assert sum(t.quantity for t in order.trades) == D("0.01")
    ids = {t.trade_id for t in order.trades}
    assert ids <= {t.trade_id for t in adapter.fetch_trades(symbol="BTC/USDT", since_ms=0)}
    assert all(t.venue_order_id == order.venue_order_id for t in order.trades)


def test_cancel_then_canceled_and_again_then_not_found(venue):
    adapter, base, _ = venue
    order = adapter.submit_order(request("a-cxl"))
    canceled = adapter.cancel_order(
        symbol="BTC/USDT", client_order_id="a-cxl", venue_order_id=order.venue_order_id
    )
    assert canceled.status == VenueOrderStatus.CANCELED
    assert "a-cxl" not in open_at_sim(base)
    with pytest.raises(VenueOrderNotFound):
        adapter.cancel_order(symbol="BTC/USDT", client_order_id="a-cxl")


def test_amend_then_replaced_natively_same_order_id(venue):
    adapter, base, _ = venue
    order = adapter.submit_order(request("a-amd"))
    amended = adapter.amend_order(
        symbol="BTC/USDT", client_order_id="a-amd", venue_order_id=order.venue_order_id,
        new_client_order_id="a-amd/1", side="buy", quantity=D("0.02"), price=D("50001.00"),
    )  # fmt: skip
    assert (amended.client_order_id, amended.venue_order_id, amended.quantity) == (
        "a-amd/1",
        order.venue_order_id,
        D("0.02"),
    )
    assert "a-amd/1" in open_at_sim(base) and "a-amd" not in open_at_sim(base)


def test_fetch_order_then_state_and_unknown_then_not_found(venue):
    adapter, _, _ = venue
    adapter.submit_order(request("a-get"))
    assert adapter.fetch_order(symbol="BTC/USDT", client_order_id="a-get").status == "NEW"
    with pytest.raises(VenueOrderNotFound):
        adapter.fetch_order(symbol="BTC/USDT", client_order_id="never-sent")


def test_venue_refuses_then_rejected_with_its_reason(venue):
    adapter, _, _ = venue
    with pytest.raises(VenueRejected, match="Filter failure: PRICE_FILTER"):
        adapter.submit_order(request("a-bad", price="50000.001"))


def test_lost_answers_then_in_doubt_and_status_request_finds_the_order(venue):
    adapter, base, _ = venue
    requests.post(f"{base}/sim/fix", json={"silent_orders": 1}, timeout=5).raise_for_status()
    with pytest.raises(VenueInDoubt):
        adapter.submit_order(request("a-doubt"))
    found = adapter.fetch_order(symbol="BTC/USDT", client_order_id="a-doubt")
    assert found.status == VenueOrderStatus.NEW
    assert open_at_sim(base).count("a-doubt") == 1


def test_session_process_down_then_unavailable_and_nothing_sent(venue):
    adapter, base, procs = venue
    session = procs["session"]
    session.stop()
    try:
        wait_for(lambda: not adapter.redis.exists(adapter.keys.session), timeout=10)
        with pytest.raises(VenueUnavailable, match="not logged on"):
            adapter.submit_order(request("a-down"))
        assert "a-down" not in open_at_sim(base)
    finally:
        procs["session"] = Proc(session.argv, session.env, session.log)  # again
        wait_for(lambda: adapter.redis.exists(adapter.keys.session), timeout=30)


def test_request_never_answered_then_forgotten_after_its_grace():
    from venues.fix_session import Pending, SessionConfig, VenueSession

    config = SessionConfig("unit", "127.0.0.1", 1, "OMS", "SIMEX", store_dir=None)  # type: ignore[arg-type]
    session = VenueSession(config, redis=None)
    old = Pending("r1", "submit", [("cl", "c1"), ("status", "s1")], deadline=1.0)
    fresh = Pending("r2", "status", [("status", "s2")], deadline=4e9)
    session._pending = {key: p for p in (old, fresh) for key in p.keys}
    assert session.forget_unanswered() == 2
    assert set(session._pending) == {("status", "s2")}
    # a later report for the forgotten ClOrdID is nobody's answer
    assert session._match("8", {"11": "c1", "150": "0"}) == (None, False)
