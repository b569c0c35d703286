"""Smart order routing through the whole stack (issue 15): two simulated venues, sim-a and
sim-b, at known books (each simulator's house quotes, shaped through ``/sim/market`` and
read back from ``/sim/state``), the real web, workers, market data and router.

* a market buy larger than the best venue's top level is split across both venues; its
  average price beats what the best single venue would have given; each child's client
  order id reached its venue exactly once;
* a venue whose breaker is open, or whose book is stale, gets nothing;
* a child rejected by its venue is routed again to the other venue.

One stack for the module (its own database and Redis db).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import requests

from omsweb import stack as stack_mod
from omsweb.stack import Stack, free_port, wait_for

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTC/USDT"
TERMINAL = {"FILLED", "CANCELED", "REJECTED", "EXPIRED", "DENIED"}


@pytest.fixture(scope="module")
def sor_stack(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("sor")
    # not the session stack's db (-2), supervised (-3), isolation (-5), nor bench's 11
    redis_db = int(os.environ.get("OMS_TEST_REDIS_DB", "15")) - 6
    env = stack_mod.isolated_env(dict(os.environ), db_name="test_oms_sor", redis_db=redis_db)
    env.update(OMS_HOME=str(logdir), OMS_LOG_LEVEL="INFO")
    sim_a, sim_b = free_port(), free_port()
    token = stack_mod.setup_database(env, sim_a, "sor-trader", extra_sims={"sim-b": sim_b})
    subprocess.run(  # generous per-account flow limits
        [sys.executable, "-m", "tests.system.fault_setup", "sor-admin"],
        env=env, cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    running = stack_mod.launch(
        env, logdir, token=token, sim_port=sim_a, extra_sims={"sim-b": sim_b}
    )
    running.sims = {  # type: ignore[attr-defined]
        "sim-a": running.sim,
        "sim-b": f"http://127.0.0.1:{sim_b}",
    }
    wait_for(lambda: running.market_data_state("sim-b", SYMBOL) == "LIVE", timeout=90)
    yield running
    running.stop()


def sim(stack: Stack, venue: str, path: str, body: dict[str, Any] | None = None) -> Any:
    base = stack.sims[venue]  # type: ignore[attr-defined]
    if body is None:
        r = requests.get(base + path, timeout=10)
    else:
        r = requests.post(base + path, json=body, timeout=10)
    r.raise_for_status()
    return r.json()


def shape(stack: Stack, venue: str, mid: str) -> list[tuple[D, D]]:
    """Re-quote the venue's house book around ``mid``: 5 small levels a side, 10 USDT
    apart. Returns its asks as the simulator holds them."""
    config = {"size_per_level": "0.002", "size_growth": "0", "level_spacing_ticks": 1000,
              "levels": 5, "spread_ticks": 2}  # fmt: skip
    sim(stack, venue, "/sim/market", {"config": {SYMBOL: config}})
    sim(stack, venue, "/sim/market", {"mid": {SYMBOL: mid}})
    asks = sim(stack, venue, "/sim/state?depth=5")["books"]["BTCUSDT"]["asks"]
    return [(D(p), D(q)) for p, q in asks]


def published(stack: Stack, books: dict[str, list[tuple[D, D]]]) -> None:
    """Wait until the consolidated book (Redis, as the router reads it) shows each
    venue's best ask as the simulator has it."""

    def check() -> bool:
        body = stack.api().get("/api/v1/marketdata/BTC-USDT/book/?depth=40").json()
        best: dict[str, D] = {}
        for level in body.get("asks", []):
            best.setdefault(level["venue"], D(level["price"]))
        return all(best.get(venue) == asks[0][0] for venue, asks in books.items())

    wait_for(check, timeout=20, interval=0.1)


def walk(asks: list[tuple[D, D]], quantity: D) -> D:
    """The average price of buying ``quantity`` at one venue, level by level."""
    left, cost = quantity, D(0)
    for price, qty in asks:
        take = min(left, qty)
        cost += take * price
        left -= take
        if not left:
            return cost / quantity
    raise AssertionError("not enough depth")


def market_buy(stack: Stack, quantity: D, cid: str) -> dict[str, Any]:
    body = {"client_order_id": cid, "account": "DEMO", "symbol": SYMBOL, "side": "buy",
            "type": "market", "quantity": str(quantity)}  # fmt: skip
    r = stack.api().post("/api/v1/orders/", body)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["venue"] is None
    return order


def settled(stack: Stack, order_id: int) -> dict[str, Any]:
    """The parent's detail once it and all its children are finished."""

    def check() -> dict[str, Any] | None:
        body = stack.api().get(f"/api/v1/orders/{order_id}/").json()
        done = body["status"] in TERMINAL and all(c["status"] in TERMINAL for c in body["children"])
        return body if done else None

    return wait_for(check, timeout=45, interval=0.2)


def reached(stack: Stack, venue: str, client_order_id: str) -> int:
    """How many new-order requests with this client order id reached the venue."""
    path = f"/sim/requests?client_order_id={client_order_id}&kind=new"
    return int(sim(stack, venue, path)["count"])


def test_market_buy_larger_than_best_top_level_then_split_beats_best_single_venue(sor_stack):
    # Arrange: sim-a is best (asks from 60000.01), sim-b 4 USDT higher; levels 10 apart
    books = {
        "sim-a": shape(sor_stack, "sim-a", "60000"),
        "sim-b": shape(sor_stack, "sim-b", "60004"),
    }
    published(sor_stack, books)
    (_pa, qa), (pb, qb) = books["sim-a"][0], books["sim-b"][0]
    assert pb < books["sim-a"][1][0]  # sim-b's top beats sim-a's second level
    quantity = qa + qb
    # Act
    parent = market_buy(sor_stack, quantity, f"sor-split-{uuid.uuid4().hex[:8]}")
    body = settled(sor_stack, parent["id"])
    # Assert
    assert body["status"] == "FILLED", body
    assert D(body["filled_quantity"]) == quantity
    children = body["children"]
    by_venue: dict[str, D] = {}
    for child in children:
        by_venue[child["venue"]] = by_venue.get(child["venue"], D(0)) + D(child["filled_quantity"])
    assert set(by_venue) == {"sim-a", "sim-b"}, children
    average = D(body["average_price"])
    best_single = min(walk(asks, quantity) for asks in books.values())
    assert average < best_single, (average, best_single)
    for child in children:
        assert child["parent_id"] == parent["id"]
        assert child["client_order_id"].startswith(parent["client_order_id"] + ".r")
        assert reached(sor_stack, child["venue"], child["venue_client_order_id"]) == 1
    (first, *_) = body["route"]
    assert {v["venue"] for v in first["venues"]} == {"sim-a", "sim-b"}
    listed = sor_stack.api().get(f"/api/v1/orders/?parent_id={parent['id']}").json()["results"]
    assert sorted(o["id"] for o in listed) == sorted(c["id"] for c in children)


def _breaker(stack: Stack, venue: str, open_: bool) -> None:
    import redis

    r = redis.Redis.from_url(stack.env["REDIS_URL"])
    key = f"oms:breaker:{venue}"
    if open_:
        r.hset(key, mapping={"state": "open", "open_until": int(time.time() * 1000) + 120_000})
    else:
        r.delete(key)


def _only_sim_b(stack: Stack, label: str) -> dict[str, Any]:
    books = {"sim-a": shape(stack, "sim-a", "60000"), "sim-b": shape(stack, "sim-b", "60004")}
    published(stack, {"sim-b": books["sim-b"]})
    quantity = books["sim-b"][0][1]
    parent = market_buy(stack, quantity, f"sor-{label}-{uuid.uuid4().hex[:8]}")
    body = settled(stack, parent["id"])
    assert {c["venue"] for c in body["children"]} == {"sim-b"}, body["children"]
    assert body["status"] == "FILLED"
    sim_a = [v for d in body["route"] for v in d["venues"] if v["venue"] == "sim-a"]
    assert sim_a and all(D(v["quantity"]) == 0 for v in sim_a)
    return {"body": body, "sim_a": sim_a}


def test_venue_with_open_breaker_then_gets_nothing(sor_stack):
    _breaker(sor_stack, "sim-a", True)
    try:
        seen = _only_sim_b(sor_stack, "breaker")
    finally:
        _breaker(sor_stack, "sim-a", False)
    assert all("breaker" in v["reason"] for v in seen["sim_a"])


def test_venue_with_stale_book_then_gets_nothing(sor_stack):
    # the book moves (diffs every 100 ms), then its stream stops: STALE within seconds
    sim(sor_stack, "sim-a", "/sim/market", {"paused": False})
    sim(sor_stack, "sim-a", "/sim/streams", {"paused": True})
    try:
        wait_for(lambda: sor_stack.market_data_state("sim-a", SYMBOL) == "STALE", timeout=15)
        seen = _only_sim_b(sor_stack, "stale")
    finally:
        sim(sor_stack, "sim-a", "/sim/streams", {"paused": False})
        sim(sor_stack, "sim-a", "/sim/market", {"paused": True})
        wait_for(lambda: sor_stack.market_data_state("sim-a", SYMBOL) == "LIVE", timeout=30)
    assert all("STALE" in v["reason"] for v in seen["sim_a"])


def test_child_rejected_by_venue_then_rerouted_to_the_other(sor_stack):
    # Arrange: sim-a (best) rejects every new order
    books = {
        "sim-a": shape(sor_stack, "sim-a", "60000"),
        "sim-b": shape(sor_stack, "sim-b", "60004"),
    }
    published(sor_stack, books)
    quantity = min(books["sim-a"][0][1], books["sim-b"][0][1])
    sim(sor_stack, "sim-a", "/sim/faults", {"reject_rate": 1.0, "scope": "orders"})
    try:
        # Act
        parent = market_buy(sor_stack, quantity, f"sor-rej-{uuid.uuid4().hex[:8]}")
        body = settled(sor_stack, parent["id"])
    finally:
        sim(sor_stack, "sim-a", "/sim/faults", {"reset": True})
    # Assert
    rejected = [c for c in body["children"] if c["status"] == "REJECTED"]
    assert [c["venue"] for c in rejected] == ["sim-a"], body["children"]
    filled = [c for c in body["children"] if c["venue"] == "sim-b"]
    assert filled and filled[0]["client_order_id"].endswith(".r2.1")
    assert body["status"] == "FILLED" and D(body["filled_quantity"]) == quantity
    assert sum(D(c["filled_quantity"]) for c in body["children"]) == quantity  # no double fill
    second = body["route"][1]
    sim_a = next(v for v in second["venues"] if v["venue"] == "sim-a")
    assert D(sim_a["quantity"]) == 0 and "rejected a child" in sim_a["reason"]
