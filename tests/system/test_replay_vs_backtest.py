"""The same strategy in the backtester and through the live OMS against ``oms simex
--replay`` of the same recording gives the same fills up to what latency explains (issue
16, Show item 2).

The strategy (``backtest/examples/periodic.py``) trades a small quantity at market every
0.75 s of market time, buying and selling in turn. It runs

* in the backtester with no latency: each order fills against the recorded book at the
  market event where the strategy decided;
* live: the whole OMS as real processes (REST -> risk -> Celery -> ccxt -> HTTP) with the
  simulated venue sim-a replaying the recording at 0.2x (so the stack's latency is a fifth
  as long in market time); a thin adapter gives the strategy the replay's clock and sends
  its orders through the REST API. Each order reaches the venue some market time after
  the strategy decided: its latency.

What is checked: the same orders (count, side, quantity); every live fill is exactly what
the recording's book gave at the moment the order reached the venue (a replica of the
simulator, the same replay code in process, stood where the request log says the replay
stood); and when no book event came between the backtest's decision and the live arrival,
the live fill is the backtest's fill. The difference otherwise (bps, market-time latency)
is printed: it is the book's move during the latency.

The module runs a stack of its own (its own database and Redis db): bounded to about two
minutes on the loaded machine.
"""

from __future__ import annotations

import csv
import os
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from backtest.data import iter_events
from backtest.examples.periodic import Periodic
from backtest.runner import run as run_backtest
from backtest.synth import SynthConfig, write_recording
from omsweb import stack as stack_mod
from omsweb.stack import free_port, wait_for
from venues.sim.engine import BUY, MARKET, SELL, MatchingEngine
from venues.sim.replay import ReplayConfig, ReplayMarket
from venues.sim.server import default_symbol

pytestmark = [pytest.mark.system, pytest.mark.timeout(420)]

SPEED = 0.2
EVERY_S = 0.75
ORDERS = 8
PARAMS = {"seconds": str(EVERY_S), "orders": str(ORDERS), "qty": "0.001", "step": "0.0001"}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> tuple[Path, Path]:
    # the folder names the backtester's venue (backtest/data.py default_venue): sim-a
    folder = tmp_path_factory.mktemp("replay") / "sim-a"
    btc, eth = folder / "btcusdt_synth.gz", folder / "ethusdt_synth.gz"
    write_recording(btc, SynthConfig(symbol="BTC/USDT", minutes=1, seed=31))
    write_recording(eth, SynthConfig(symbol="ETH/USDT", minutes=1, seed=32))
    return btc, eth


@pytest.fixture(scope="module")
def replay_stack(tmp_path_factory, recordings):
    btc, eth = recordings
    logdir = tmp_path_factory.mktemp("replay-stack")
    # not the session stack's (-2), supervised (-3), isolation (-5), nor bench's 11
    redis_db = int(os.environ.get("OMS_TEST_REDIS_DB", "15")) - 8
    env = stack_mod.isolated_env(dict(os.environ), db_name="test_oms_replay", redis_db=redis_db)
    env.update(OMS_HOME=str(logdir), OMS_LOG_LEVEL="INFO")
    sim_port = free_port()
    token = stack_mod.setup_database(env, sim_port, "replay-trader")
    sim_args = ("--paused", "--replay", str(btc), "--replay", str(eth),
                "--speed", str(SPEED), "--step-ms", "10")  # fmt: skip
    running = stack_mod.launch(env, logdir, token=token, sim_port=sim_port, sim_args=sim_args)
    yield running
    running.stop()


class LiveContext:
    """What ``Periodic`` needs of a context, on the live OMS: the replay's clock (market
    time, read from the simulator) and order entry through the REST API."""

    def __init__(self, stack) -> None:
        self.stack, self.api = stack, stack.api()
        self.params: dict[str, str] = {}
        self.now_ns = 0
        self.sent: list[dict] = []  # {"id", "decided_ns"}

    @property
    def now(self) -> float:
        return self.now_ns / 1e9

    def submit(self, *, symbol, side, type, quantity, price=None, time_in_force="GTC",
               venue=None, parent=None) -> str:  # fmt: skip
        cid = f"rvb-{len(self.sent)}"
        body = {"account": "DEMO", "symbol": symbol, "side": side, "type": type,
                "quantity": str(quantity), "venue": venue, "client_order_id": cid}  # fmt: skip
        r = self.api.post("/api/v1/orders/", body)
        assert r.status_code == 201, r.text
        self.sent.append({"id": r.json()["id"], "decided_ns": self.now_ns})
        return cid


def run_live(stack) -> tuple[LiveContext, list[dict]]:
    """The strategy on the live stack, clocked by the replay; its orders as filled."""
    ctx = LiveContext(stack)
    strategy = Periodic(**{**PARAMS, "symbol": "BTC/USDT", "venue": "sim-a"})
    strategy.on_start(ctx)  # type: ignore[arg-type]
    seen = -1
    stack.sim_post("/sim/market", {"paused": False})
    deadline = time.monotonic() + 120
    try:
        while len(ctx.sent) < ORDERS:
            assert time.monotonic() < deadline, f"only {len(ctx.sent)} orders sent"
            replay = stack.sim_get("/sim/state", depth=1)["market"]["replay"]
            ctx.now_ns = replay["time_ns"]
            if replay["events"] != seen:  # the book changed: as the backtester calls on_book
                seen = replay["events"]
                strategy.on_book(ctx, None)  # type: ignore[arg-type]
            time.sleep(0.02)
    finally:
        stack.sim_post("/sim/market", {"paused": True})
    api = ctx.api
    filled = [
        wait_for(
            lambda i=o["id"]: (lambda b: b if b["status"] == "FILLED" else None)(
                api.get(f"/api/v1/orders/{i}/").json()
            ),
            timeout=60,
            interval=0.3,
        )
        for o in ctx.sent
    ]
    return ctx, filled


def replica_fills(recordings: tuple[Path, Path], arrivals: list[dict]) -> list[list[tuple]]:
    """What the simulator's own replay gives each order at the replay position its request
    log recorded: the simulator in process, standing where it stood."""
    engine = MatchingEngine(
        [default_symbol(s).instrument for s in ("BTC/USDT", "ETH/USDT")], lambda: 0
    )
    engine.add_account("user", {"USDT": D("1000000"), "BTC": D("100"), "ETH": D("1000")})
    market = ReplayMarket(engine, ReplayConfig(tuple(recordings)))
    out = []
    for req in arrivals:
        market.advance_events(req["replay_events"])
        order = engine.place_order(
            "user", "BTCUSDT", BUY if req["side"] == "BUY" else SELL, MARKET,
            quantity=D(req["quantity"]),
        )  # fmt: skip
        out.append([(f.price, f.qty) for f in order.fills])
    return out


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_same_strategy_live_against_replay_and_in_backtester_then_fills_differ_by_latency_only(
    replay_stack, recordings, tmp_path
):
    btc, _ = recordings
    # Arrange / Act 1: the backtester, no latency
    run_backtest(data=[btc], strategy=Periodic(**PARAMS), latency_ms=0, out_dir=tmp_path / "bt")
    bt_orders = read_csv(tmp_path / "bt" / "orders.csv")
    bt_fills = read_csv(tmp_path / "bt" / "fills.csv")
    # Act 2: live
    ctx, live = run_live(replay_stack)
    arrivals = replay_stack.sim_get("/sim/requests", kind="new", symbol="BTCUSDT")["requests"]

    # Assert: the same orders
    assert len(bt_orders) == len(live) == len(arrivals) == ORDERS
    assert [(o["side"], D(o["quantity"])) for o in bt_orders] == [
        (o["side"], D(o["quantity"])) for o in live
    ]
    assert all(a["outcome"] == "accepted" and a["order_status"] == "FILLED" for a in arrivals)
    # every live fill is the recording's book at the moment the order reached the venue
    replica = replica_fills(recordings, arrivals)
    live_fills = [sorted((D(f["price"]), D(f["quantity"])) for f in o["fills"]) for o in live]
    assert live_fills == [sorted(r) for r in replica]

    # the difference to the backtest: the book's move during the latency
    events = list(iter_events(list(recordings)))
    rows, same_book = [], 0
    for k, (bo, lo, arr) in enumerate(zip(bt_orders, live, arrivals, strict=True)):
        decided_ns = int(D(bo["created_ts"]) * 10**9)
        arrived_ns = events[arr["replay_events"] - 1].ts_ns  # the last event the order met
        bt_px = D(
            next(f["price"] for f in bt_fills if f["client_order_id"] == bo["client_order_id"])
        )
        live_px = D(lo["average_price"])
        # book events (any but trades, which only take) between the two moments
        moved = any(
            lo_ns < ev.ts_ns <= hi_ns and type(ev).__name__ != "Trade" and ev.symbol == "BTCUSDT"
            for lo_ns, hi_ns in [(min(decided_ns, arrived_ns), max(decided_ns, arrived_ns))]
            for ev in events
        )
        if not moved:
            same_book += 1
            assert live_px == bt_px, (k, live_px, bt_px)
        rows.append(
            (k, bo["side"], bt_px, live_px, (live_px - bt_px) / bt_px * 10_000,
             (arrived_ns - decided_ns) / 1e6, ctx.sent[k]["decided_ns"])
        )  # fmt: skip
    print(f"\nlive vs backtest on one recording (replay at {SPEED}x): {same_book} of {ORDERS}"
          " orders met the same book and filled at the same price")  # fmt: skip
    for k, side, bt_px, live_px, bps, lat_ms, _ in rows:
        print(f"  #{k} {side:4s} backtest {bt_px} live {live_px} diff {bps:+.3f} bp"
              f" (arrived {lat_ms:+.1f} ms of market time after the backtest's decision)")  # fmt: skip
