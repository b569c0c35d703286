"""The engine end to end: fills against the recording, determinism, P&L arithmetic, the
OMS's rules (risk, kill switch, in-doubt resolution) under a fault matrix."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import pytest

from backtest import Strategy
from backtest.config import BacktestConfig, Faults, VenueConfig, config_from_dict
from backtest.data import Ticker, Trade, iter_events
from backtest.engine import BacktestError
from backtest.runner import run
from orders.domain.lifecycle import TERMINAL_STATUSES

from .conftest import SHARED, needs_shared
from .synthetic import write_recording

LOOSE = {
    "max_duplicate_orders": "1000000",
    "max_orders_per_second": "1000000",
    "max_open_orders": "100000",
}


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rec") / "sim"  # the folder names the venue
    folder.mkdir()
    return write_recording(folder / "testusdt_1.txt")


def loose(**kw) -> BacktestConfig:
    data = {"risk": {"limits": LOOSE}}
    data.update(kw)
    return config_from_dict(data)


class EveryN(Strategy):
    """Buys (or sells) at market every n trades; records what the book showed then."""

    def on_start(self, ctx):
        self.n = self.param("n", 20)
        self.qty = self.param("qty", D("0.01"))
        self.flip = self.param("flip", False)
        self.seen = 0
        self.asks: dict[str, tuple[D, D]] = {}

    def on_trade(self, ctx, trade):
        self.seen += 1
        if self.seen % self.n:
            return
        side = "sell" if self.flip and (self.seen // self.n) % 2 == 0 else "buy"
        book = ctx.book(trade.symbol, trade.venue)
        cid = ctx.submit(
            symbol=trade.symbol, side=side, type="market", quantity=self.qty, venue=trade.venue
        )
        self.asks[cid] = book.best_ask()


class Quoter(Strategy):
    """Keeps a bid and an ask one tick inside... at the touch, amends them as the mid moves."""

    def on_start(self, ctx):
        self.ids: dict[str, str | None] = {"buy": None, "sell": None}
        self.last = 0

    def on_book(self, ctx, book):
        if ctx.now_ns - self.last < 200_000_000 or book.state != "LIVE":
            return
        self.last = ctx.now_ns
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return
        for side, price in (("buy", bid[0]), ("sell", ask[0])):
            cid = self.ids[side]
            order = ctx.order(cid) if cid else None
            if order is None or order.is_terminal:
                self.ids[side] = ctx.submit(
                    symbol=book.symbol,
                    side=side,
                    type="limit",
                    quantity="0.5",
                    price=price,
                    venue=book.venue,
                )
            elif order.status in ("ACCEPTED", "PARTIALLY_FILLED") and order.price != price:
                if not ctx.amend(cid, price=price):
                    ctx.cancel(cid)


def summary_without_timing(path: Path) -> dict:
    data = json.loads((path / "summary.json").read_text())
    data.pop("timing")
    data.pop("events_per_s")
    return data


def check_books_balance(result) -> None:
    """Every order terminal; the OMS's fills are the venue's executions, one for one;
    the position is the sum of fills; P&L = cash flows - fees + position x last mid."""
    bt = result.backtest
    open_orders = [o for o in bt.orders.values() if o.state.status not in TERMINAL_STATUSES]
    assert open_orders == [] or all(
        o.status in ("ACCEPTED", "PARTIALLY_FILLED") for o in open_orders
    )
    for order in bt.orders.values():
        if order.venue is None:
            continue
        at_venue = bt.venues[order.venue].venue.fetch(order.client_order_id)
        venue_filled = D(0) if at_venue is None else at_venue.filled
        assert order.filled_quantity == venue_filled, order
    fills = [r.fill for r in bt.metrics.fills]
    by_symbol: dict[str, D] = {}
    cash = D(0)
    for f in fills:
        signed = f.quantity if f.side == "buy" else -f.quantity
        by_symbol[f.symbol] = by_symbol.get(f.symbol, D(0)) + signed
        cash -= signed * f.price + f.fee
    for symbol, pos in bt.positions.items():
        assert pos.quantity == by_symbol.get(symbol, D(0))
    marks = sum((p.quantity * bt.mark(s) for s, p in bt.positions.items() if p.quantity), D(0))
    assert abs(D(result.summary["pnl_total"]) - (cash + marks)) < D("0.000001")


# ---------------------------------------------------------------------------- generated data


def test_market_orders_fill_at_the_book_the_strategy_saw_with_zero_latency(recording, tmp_path):
    strategy = EveryN(n="10", qty="0.2")

    result = run(
        data=[recording],
        strategy=strategy,
        config=loose(),
        latency_ms=0,
        out_dir=tmp_path,
        report=False,
    )

    assert result.summary["orders"] > 50 and result.summary["fills"] >= result.summary["orders"]
    for order in result.backtest.metrics.orders:
        first = next(
            r.fill
            for r in result.backtest.metrics.fills
            if r.fill.client_order_id == order.client_order_id
        )
        assert first.price == strategy.asks[order.client_order_id][0]
    check_books_balance(result)


def test_same_seed_gives_identical_summary_and_another_seed_does_not(recording, tmp_path):
    cfg = loose(
        venue=[
            {
                "name": "sim",
                "faults": {"error_5xx_rate": 0.05, "timeout_rate": 0.02, "reject_rate": 0.05},
            }
        ]
    )
    runs = []
    for i, seed in enumerate((7, 7, 8)):
        out = tmp_path / str(i)
        run(data=[recording], strategy=Quoter(), config=cfg, seed=seed, out_dir=out, report=False)
        runs.append(summary_without_timing(out))

    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert (tmp_path / "0" / "orders.csv").read_bytes() == (
        tmp_path / "1" / "orders.csv"
    ).read_bytes()


def test_latency_delays_acks_and_the_feed(recording):
    result = run(
        data=[recording], strategy=EveryN(n="10"), config=loose(), latency_ms=50, report=False
    )

    lat = result.summary["latency"]
    assert lat["ack_p50_ms"] == pytest.approx(100.0, abs=0.01)  # order 50 + response 50
    assert lat["feed_p50_ms"] == pytest.approx(50.0) and lat["fill_p50_ms"] == pytest.approx(50.0)


def test_default_latency_model_is_not_zero(recording):
    result = run(data=[recording], strategy=EveryN(n="10"), config=loose(), report=False)

    assert result.summary["latency"]["ack_p50_ms"] > 5


def test_resting_quotes_fill_as_maker_and_books_balance(recording):
    result = run(data=[recording], strategy=Quoter(), config=loose(), report=False)

    fills = [r.fill for r in result.backtest.metrics.fills]
    assert fills and all(f.liquidity == "maker" for f in fills)
    assert (
        result.summary["orders_by_status"].get("CANCELED", 0)
        + result.summary["orders_by_status"].get("FILLED", 0)
        > 10
    )
    check_books_balance(result)


FAULTS = {
    "5xx after execution": {"error_5xx_rate": 0.3, "executed_if_in_doubt": 1.0},
    "5xx before execution": {"error_5xx_rate": 0.3, "executed_if_in_doubt": 0.0},
    "timeouts": {"timeout_rate": 0.2, "timeout_s": 1.0},
    "rejects": {"reject_rate": 0.3},
    "429": {"rate_limit_rate": 0.3, "retry_after_s": 0.5},
    "outage": {"outages": [[20, 35]]},
    "everything": {
        "error_5xx_rate": 0.1,
        "timeout_rate": 0.1,
        "reject_rate": 0.1,
        "rate_limit_rate": 0.1,
        "timeout_s": 2.0,
        "outages": [[30, 40]],
    },
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_matrix_leaves_no_order_unresolved(recording, name):
    cfg = loose(venue=[{"name": "sim", "faults": FAULTS[name]}])

    result = run(
        data=[recording], strategy=EveryN(n="5", flip="1"), config=cfg, seed=3, report=False
    )

    s = result.summary
    assert s["orders_pending_at_end"] == 0 and s["in_doubt"]["unresolved"] == 0
    assert all(o.is_terminal for o in result.backtest.orders.values())
    check_books_balance(result)
    if name.startswith("5xx") or name == "timeouts":
        assert s["in_doubt_total"] > 0
        resolved = sum(v for k, v in s["in_doubt"].items() if k.startswith("resolved"))
        assert resolved == s["in_doubt_total"]
    if name == "5xx after execution":
        assert s["in_doubt"]["resolved: executed at venue"] == s["in_doubt_total"]
    if name == "rejects":
        assert sum(s["rejects"].values()) > 0
    if name == "outage":  # the strategy hears nothing from the venue in the window
        start = result.backtest.start_ns
        assert [o["down"] for o in s["outages"]] == [True, False]
        created = [(o.created_ns - start) / 1e9 for o in result.backtest.orders.values()]
        assert created and not [t for t in created if 20.1 < t < 35]


def test_risk_denials_and_the_kill_switch_after_a_position_breach(recording):
    cfg = config_from_dict(
        {"risk": {"limits": {**LOOSE, "max_position": "1", "max_order_quantity": "0.5"}}}
    )

    result = run(
        data=[recording], strategy=EveryN(n="5", qty="0.3"), config=cfg, latency_ms=0, report=False
    )

    s = result.summary
    assert D(s["final_position"]["TESTUSDT"]) <= D("1.2")  # 4 fills at most before REDUCING
    assert s["denials"]["MAX_POSITION"] + s["denials"].get("TRADING_STATE", 0) > 0
    assert s["kill_switch"] == [] or s["kill_switch"][0]["state"] == "REDUCING"
    too_big = run(
        data=[recording], strategy=EveryN(n="50", qty="0.6"), config=cfg, latency_ms=0, report=False
    )
    assert set(too_big.summary["denials"]) == {"MAX_ORDER_QUANTITY"}
    assert too_big.summary["fills"] == 0


def test_daily_loss_halts_and_cancels_working_orders(recording):
    cfg = config_from_dict({"risk": {"limits": {**LOOSE, "max_daily_loss": "0.5"}}})

    result = run(data=[recording], strategy=Quoter(), config=cfg, latency_ms=0, report=False)

    s = result.summary
    assert [k["state"] for k in s["kill_switch"]] == ["HALTED"]
    assert s["denials"].get("TRADING_STATE", 0) > 0
    assert all(o.is_terminal for o in result.backtest.orders.values())


class Raises(Strategy):
    def on_trade(self, ctx, trade):
        raise RuntimeError("boom")


def test_strategy_errors_are_counted_with_file_and_line_and_stop_after_too_many(recording):
    result = run(data=[recording], strategy=Raises(), config=loose(), report=False)

    s = result.summary
    assert s["strategy_errors"] == 100  # then the run stops
    assert "on_trade raised RuntimeError: boom (" in s["strategy_error_messages"][0]
    assert "test_engine.py:" in s["strategy_error_messages"][0]


class BadOrders(Strategy):
    def on_start(self, ctx):
        self.done = False

    def on_trade(self, ctx, trade):
        if not self.done:
            self.done = True
            ctx.submit(symbol=trade.symbol, side="hold", type="market", quantity="1")


def test_a_bad_order_is_reported_naming_the_field(recording):
    result = run(data=[recording], strategy=BadOrders(), config=loose(), report=False)

    (message,) = result.summary["strategy_error_messages"]
    assert message.startswith("on_trade: side: 'hold' is not buy or sell (")
    assert "test_engine.py:" in message  # the strategy's line that sent it


def test_bad_data_lines_are_counted_in_the_summary_and_missing_files_stop_the_run(
    recording, tmp_path
):
    bad = tmp_path / "bad.txt"
    bad.write_text(recording.read_text() + "999 not json\n")

    result = run(data=[bad], strategy=EveryN(), config=loose(), report=False)

    assert result.summary["data_issues"]["total"] == 1
    assert result.summary["data_issues"]["first"][0].startswith(f"{bad}:")
    with pytest.raises(BacktestError, match="nope.gz: no such file"):
        run(data=[tmp_path / "nope.gz"], strategy=EveryN(), report=False)
    with pytest.raises(BacktestError, match="cannot import module 'no_such_module'"):
        run(data=[recording], strategy="no_such_module:X", report=False)


def test_one_recording_as_two_venues_routed_to_the_cheaper_one(recording):
    cfg = loose(
        router="best",
        venue=[
            {"name": "cheap", "taker_fee": "0.0001"},
            {"name": "dear", "taker_fee": "0.002", "price_offset_bp": 5.0, "tick_size": "0.01"},
        ],
    )

    class Routed(EveryN):
        def on_trade(self, ctx, trade):
            self.seen += trade.venue == "cheap"
            if trade.venue == "cheap" and self.seen % 20 == 0:
                ctx.submit(symbol=trade.symbol, side="buy", type="market", quantity="0.1")

    result = run(data=[recording], strategy=Routed(), config=cfg, latency_ms=0, report=False)

    assert (
        result.summary["venues"]["cheap"]["fills"] > 0
        and result.summary["venues"]["dear"]["fills"] == 0
    )


# ---------------------------------------------------------------------------- the shared real data


@needs_shared
def test_real_data_buying_every_n_trades_fills_at_the_recorded_best_ask(tmp_path):
    path = SHARED / "btcusdt_20240808.gz"
    n = 100
    result = run(
        data=[path],
        strategy=EveryN(n=str(n), qty="0.0001"),
        config=loose(),
        latency_ms=0,
        out_dir=tmp_path,
        report=False,
    )
    # the recorded best ask when each order went: the newest bookTicker line before the trade
    expected = []
    last: Ticker | None = None
    seen = 0
    for ev in iter_events([path]):
        if isinstance(ev, Ticker):
            last = ev
        elif isinstance(ev, Trade):
            seen += 1
            if seen % n == 0:
                assert last is not None
                expected.append((last.ask_price, last.ask_qty))
    orders = result.backtest.metrics.orders
    assert len(orders) == len(expected) == 97
    fills = {}
    for row in result.backtest.metrics.fills:
        fills.setdefault(row.fill.client_order_id, []).append(row.fill)
    for order, (ask, ask_qty) in zip(orders, expected, strict=True):
        got = fills[order.client_order_id]
        assert got[0].price == ask and got[0].quantity == min(ask_qty, D("0.0001"))
        assert [f.price for f in got] == sorted(f.price for f in got)  # deeper levels after
    check_books_balance(result)
    s = result.summary
    assert D(s["volume"]) == D("0.0097") and s["final_position"] == {"BTCUSDT": "0.0097"}


@needs_shared
def test_real_data_same_seed_same_summary(tmp_path):
    data = [SHARED / "btcusdt_20240808.gz", SHARED / "ethusdt_20240808.gz"]
    cfg = loose(
        venue=[{"name": "binance", "faults": {"error_5xx_rate": 0.02, "reject_rate": 0.02}}]
    )
    for out in (tmp_path / "a", tmp_path / "b"):
        run(data=data, strategy=Quoter(), config=cfg, seed=11, out_dir=out, report=False)

    assert summary_without_timing(tmp_path / "a") == summary_without_timing(tmp_path / "b")
    for name in ("orders.csv", "fills.csv", "series.csv", "latency.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@needs_shared
def test_real_data_fault_matrix_leaves_no_order_unresolved():
    cfg = loose(venue=[{"name": "binance", "faults": FAULTS["everything"]}])

    result = run(
        data=[SHARED / "ethusdt_20240808.gz"],
        strategy=EveryN(n="20", flip="1", qty="0.01"),
        config=cfg,
        seed=5,
        report=False,
    )

    s = result.summary
    assert s["orders"] > 200 and s["in_doubt_total"] > 0
    assert s["orders_pending_at_end"] == 0 and s["in_doubt"]["unresolved"] == 0
    check_books_balance(result)


def test_default_limits_are_the_fresh_installs():
    from backtest.config import DEFAULT_BREACH_ACTIONS, DEFAULT_LIMITS
    from risk.defaults import DEFAULT_LIMITS as LIVE

    assert DEFAULT_LIMITS == {k: v for k, (v, _) in LIVE.items()}
    assert DEFAULT_BREACH_ACTIONS == {k: a for k, (_, a) in LIVE.items() if a}


def test_config_errors_name_the_key(tmp_path):
    from backtest.config import ConfigError, load_config

    bad = tmp_path / "c.toml"
    bad.write_text('[[venue]]\nname = "a"\nfaults = { reject_rate = 2 }\n')
    with pytest.raises(
        ConfigError, match=r"venue\[0\]\.faults\.reject_rate: 2 must be >= 0 and <= 1"
    ):
        load_config(bad)
    bad.write_text('[risk.limits]\nmax_positon = "1"\n')
    with pytest.raises(ConfigError, match="risk.limits.max_positon: unknown limit"):
        load_config(bad)
    ok = tmp_path / "ok.toml"
    ok.write_text(
        'seed = 3\n[[venue]]\nname = "a"\nlatency.order = { dist = "normal", ms = 5, sigma = 1 }\n'
    )
    cfg = load_config(ok)
    assert cfg.seed == 3 and cfg.venues[0].latency.order.ms == 5
    assert replace(cfg, seed=4).venues == (
        VenueConfig(name="a", latency=cfg.venues[0].latency, faults=Faults()),
    )


def test_sor_splits_across_venues_in_rounds_and_parents_follow_their_children(recording):
    cfg = loose(
        router="sor",
        venue=[
            {"name": "a", "taker_fee": "0.001", "depth_scale": 0.5},
            {
                "name": "b",
                "taker_fee": "0.001",
                "price_offset_bp": 1.0,
                "tick_size": "0.01",
                "depth_scale": 0.5,
            },
        ],
    )

    class Big(Strategy):
        def on_start(self, ctx):
            self.sent = 0

        def on_trade(self, ctx, trade):
            if trade.venue == "a" and self.sent < 5 and ctx.now_ns % 7 == 0:
                self.sent += 1
                ctx.submit(symbol=trade.symbol, side="buy", type="market", quantity="1.5")

    result = run(data=[recording], strategy=Big(), config=cfg, latency_ms=0, report=False)

    bt = result.backtest
    parents = [o for o in bt.orders.values() if o.venue is None]
    assert parents and all(p.children for p in parents)
    assert any({bt.orders[c].venue for c in p.children} == {"a", "b"} for p in parents)
    for p in parents:
        children = [bt.orders[c] for c in p.children]
        assert p.filled_quantity == sum(c.filled_quantity for c in children)
        assert p.is_terminal and all(c.is_terminal for c in children)
        assert all(c.time_in_force == "IOC" and c.price is not None for c in children)
    assert bt.metrics.routes and bt.metrics.routes[0]["venues"][0]["reason"]
    check_books_balance(result)


def test_an_order_no_venue_may_trade_is_denied_no_route(recording):
    cfg = loose(router="sor", venue=[{"name": "a"}, {"name": "b"}])

    class Early(Strategy):
        def on_start(self, ctx):  # before the first book: no venue has market data
            ctx.submit(symbol="TESTUSDT", side="buy", type="limit", quantity="1", price="99.00")

    result = run(data=[recording], strategy=Early(), config=cfg, latency_ms=0, report=False)

    (order,) = result.backtest.orders.values()
    assert order.status == "DENIED" and order.reason.startswith("NO_ROUTE: a ")
    assert result.summary["denials"] == {"NO_ROUTE": 1}


@pytest.mark.parametrize("latency", [0, 20])
def test_a_trade_csv_alone_is_a_one_level_book_around_the_last_trade(tmp_path, latency):
    path = tmp_path / "ethusdt.csv"
    rows = ["ts,price,qty,side"] + [
        f"{1700000000000 + i * 100},{2500 + (i % 5) / 100:.2f},0.5,buy" for i in range(200)
    ]
    path.write_text("\n".join(rows) + "\n")

    result = run(
        data=[path],
        strategy=EveryN(n="10", qty="0.1"),
        config=loose(),
        latency_ms=latency,
        report=False,
    )

    fills = [r.fill for r in result.backtest.metrics.fills]
    assert len(fills) == 19 or len(fills) == 20
    assert all(D("2500.01") <= f.price <= D("2500.05") for f in fills)  # a tick above a trade
    check_books_balance(result)


def test_an_ohlcv_csv_is_a_book_around_each_close(tmp_path):
    path = tmp_path / "btcusdt_1m.csv"
    rows = ["time,open,high,low,close,volume"] + [
        f"{1700000000 + 60 * i},100.0,103.0,99.0,{100 + i % 3}.0,5" for i in range(100)
    ]
    path.write_text("\n".join(rows) + "\n")

    result = run(
        data=[path], strategy=EveryN(n="10", qty="1"), config=loose(), latency_ms=0, report=False
    )

    fills = [r.fill for r in result.backtest.metrics.fills]
    assert result.summary["data_issues"]["total"] == 0
    assert len(fills) == 10 and {f.price for f in fills} <= {D("100.1"), D("101.1"), D("102.1")}


@needs_shared
@pytest.mark.parametrize("router", ["sor", "best", "fixed:sim-b"])
def test_the_example_two_venue_config_compares_routers_on_one_recording(router):
    from backtest.config import load_config

    cfg = load_config(
        Path(__file__).resolve().parents[2] / "backtest" / "examples" / "two_venues.toml"
    )

    result = run(
        data=[SHARED / "btcusdt_20240808.gz"],
        strategy="backtest.examples.twap:Twap",
        params={"quantity": "2", "slices": "10", "minutes": "4"},
        config=replace(cfg, router=router),
        report=False,
    )

    s = result.summary
    assert s["router"] == router and s["fills"] > 0
    used = {v for v, figures in s["venues"].items() if figures["fills"]}
    assert used == {"sim-b"} if router == "fixed:sim-b" else used
    check_books_balance(result)


def test_a_scheduled_kill_switch_halts_cancels_and_releases(recording):
    cfg = loose(
        kill_switch=[
            {"at_s": 20, "scope": "account", "state": "HALTED", "reason": "drill"},
            {"at_s": 40, "scope": "account", "state": "ACTIVE", "reason": "drill over"},
        ]
    )

    result = run(data=[recording], strategy=Quoter(), config=cfg, latency_ms=0, report=False)

    s = result.summary
    assert [(k["state"], k["reason"]) for k in s["kill_switch"]] == [
        ("HALTED", "drill"),
        ("ACTIVE", "drill over"),
    ]
    start = result.backtest.start_ns
    halted = [
        o
        for o in result.backtest.orders.values()
        if o.status == "DENIED" and "TRADING_STATE" in o.reason
    ]
    assert halted and all(20 <= (o.created_ns - start) / 1e9 < 40 for o in halted)
    canceled_at_halt = [
        o
        for o in result.backtest.orders.values()
        if o.status == "CANCELED" and o.done_ns and 20 <= (o.done_ns - start) / 1e9 < 20.1
    ]
    assert canceled_at_halt
    assert any(
        (o.created_ns - start) / 1e9 > 40 and o.status != "DENIED"
        for o in result.backtest.orders.values()
    )
