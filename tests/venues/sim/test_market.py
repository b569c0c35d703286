"""Synthetic market model: determinism, realistic book, resting orders get filled."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from venues.sim.engine import BUY, GTC, LIMIT, SELL, MatchingEngine
from venues.sim.market import HOUSE_ACCOUNT, MarketModel, SymbolMarketConfig
from venues.sim.server import default_symbol

pytestmark = pytest.mark.timeout(60)


def build(seed: int = 1, **market: object) -> tuple[MatchingEngine, MarketModel, list[int]]:
    sym = default_symbol("BTC/USDT")
    now = [1_700_000_000_000]
    eng = MatchingEngine([sym.instrument], lambda: now[0])
    eng.add_account("user", {"USDT": D("1000000"), "BTC": D("100")})
    cfg = sym.market
    for k, v in market.items():
        setattr(cfg, k, v)
    model = MarketModel(eng, {"BTCUSDT": cfg}, seed=seed)
    model.step(now[0])
    return eng, model, now


def run(model: MarketModel, now: list[int], steps: int, dt: int = 100) -> list[D]:
    mids = []
    for _ in range(steps):
        now[0] += dt
        model.step(now[0])
        mids.append(model.mid("BTCUSDT"))
    return mids


def test_book_shape() -> None:
    eng, model, _ = build()
    bids, asks = eng.depth("BTCUSDT", 100)
    assert len(bids) == 10 and len(asks) == 10
    assert bids[0][0] == D("59999.99") and asks[0][0] == D("60000.01")
    assert all(q > 0 for _, q in bids + asks)
    assert bids[1][0] == bids[0][0] - 1  # 100 ticks spacing
    assert not eng.is_crossed("BTCUSDT")


def test_deterministic_for_seed() -> None:
    _, m1, n1 = build(seed=5)
    _, m2, n2 = build(seed=5)
    _, m3, n3 = build(seed=6)
    a, b, c = run(m1, n1, 200), run(m2, n2, 200), run(m3, n3, 200)
    assert a == b
    assert a != c
    assert len(set(a)) > 10  # it moves


def test_mid_stays_bounded() -> None:
    _, model, now = build(volatility=0.05, max_drift=0.1)
    mids = run(model, now, 500, dt=1000)
    assert min(mids) >= D("54000") and max(mids) <= D("66000")


def test_resting_user_orders_fill_over_time() -> None:
    eng, model, now = build(seed=3, volatility=0.002)
    inst = eng.instrument("BTCUSDT")
    bid = eng.best_bid("BTCUSDT")
    ask = eng.best_ask("BTCUSDT")
    assert bid is not None and ask is not None
    buy = eng.place_order(
        "user", "BTCUSDT", BUY, LIMIT, quantity=D("0.1"), price=bid - 20, time_in_force=GTC
    )
    sell = eng.place_order(
        "user", "BTCUSDT", SELL, LIMIT, quantity=D("0.1"), price=ask + 20, time_in_force=GTC
    )
    for _ in range(3000):
        now[0] += 100
        model.step(now[0])
        assert not eng.is_crossed("BTCUSDT")
        if not buy.is_open and not sell.is_open:
            break
    assert buy.executed_qty > 0 or sell.executed_qty > 0
    assert inst.symbol == "BTCUSDT"
    trades = eng.my_trades("user", "BTCUSDT")
    assert trades and all(t.is_maker for t in trades)


def test_set_mid_takes_resting_orders_and_house_does_not_pile_up() -> None:
    eng, model, now = build(taker_rate_per_s=5.0)
    ask = eng.best_ask("BTCUSDT")
    assert ask is not None
    sell = eng.place_order(
        "user", "BTCUSDT", SELL, LIMIT, quantity=D("0.05"), price=ask + 5, time_in_force=GTC
    )
    model.set_mid("BTCUSDT", ask + 30)
    assert sell.status == "FILLED"
    run(model, now, 300)
    # house keeps exactly its quotes open; closed house orders are not retained
    assert len(eng.open_orders(HOUSE_ACCOUNT, "BTCUSDT")) <= 20
    assert len(eng.orders) < 200
    assert eng.ticker_24h("BTCUSDT").count > 0  # house takers print trades


def test_taker_flow_partially_fills_top_of_book() -> None:
    eng, model, now = build(seed=11, volatility=0.0, taker_rate_per_s=20.0)
    bid = eng.best_bid("BTCUSDT")
    assert bid is not None
    # join the best bid ahead of the house's next re-quote: first in the queue
    order = eng.place_order(
        "user", "BTCUSDT", BUY, LIMIT, quantity=D("0.5"), price=bid, time_in_force=GTC
    )
    run(model, now, 100)
    assert order.executed_qty > 0


def test_config_update() -> None:
    eng, model, now = build()
    model.update_config("BTCUSDT", levels=3, spread_ticks=10)
    run(model, now, 1)
    bids, asks = eng.depth("BTCUSDT", 100)
    assert len(bids) == 3 and len(asks) == 3
    assert asks[0][0] - bids[0][0] == D("0.10")


def test_other_config_defaults() -> None:
    cfg = SymbolMarketConfig(mid=D("10"))
    assert cfg.levels == 10 and cfg.volatility > 0


# --- venues that look like one market (issue 14, item 6) ----------------------------------


def demo_venue(name: str, start_ms: int) -> tuple[MatchingEngine, MarketModel, list[int], D]:
    from venues.sim.server import DEMO_VENUE_ARGS, config_from_args, parse_args

    cfg = config_from_args(parse_args(["--name", name, *DEMO_VENUE_ARGS[name]]))
    now = [start_ms]
    eng = MatchingEngine([s.instrument for s in cfg.symbols], lambda: now[0])
    model = MarketModel(eng, {s.instrument.symbol: s.market for s in cfg.symbols}, seed=cfg.seed)
    return eng, model, now, cfg.taker_fee


def test_fundamental_is_a_function_of_seed_and_time_only() -> None:
    from venues.sim.market import Fundamental

    a, b, c = Fundamental(14, 0.0005), Fundamental(14, 0.0005), Fundamental(15, 0.0005)
    t = 1_765_000_000_000
    assert a.ratio(t) == b.ratio(t) != c.ratio(t)
    assert 0.8 < a.ratio(t) < 1.2 and a.ratio(t) != a.ratio(t + 60_000)


def test_demo_venues_follow_one_price_a_few_bps_apart_and_neither_is_always_best() -> None:
    # Arrange: the two demo venues, started at different times, as `oms up` does
    t0 = 1_765_000_000_000
    a_eng, a_model, a_now, a_fee = demo_venue("sim-a", t0)
    b_eng, b_model, b_now, b_fee = demo_venue("sim-b", t0 + 7_300)
    b_now[0] = t0
    diffs_bps, crossed, a_cheaper, n = [], 0, 0, 3_000  # 5 minutes of 100 ms steps
    # Act
    for _ in range(n):
        for model, now in ((a_model, a_now), (b_model, b_now)):
            now[0] += 100
            model.step(now[0])
        a_bid, a_ask = a_eng.best_bid("BTCUSDT"), a_eng.best_ask("BTCUSDT")
        b_bid, b_ask = b_eng.best_bid("BTCUSDT"), b_eng.best_ask("BTCUSDT")
        assert a_bid and a_ask and b_bid and b_ask
        diffs_bps.append(abs(float((a_bid + a_ask) / (b_bid + b_ask)) - 1) * 1e4)
        if a_bid * (1 - a_fee) > b_ask * (1 + b_fee) or b_bid * (1 - b_fee) > a_ask * (1 + a_fee):
            crossed += 1
        a_cheaper += a_ask * (1 + a_fee) < b_ask * (1 + b_fee)
    # Assert: a few bps apart, rarely crossed net of fees, each venue sometimes the best
    assert sorted(diffs_bps)[n // 2] < 5 and max(diffs_bps) < 20
    assert crossed / n < 0.01
    assert 0.1 < a_cheaper / n < 0.9
