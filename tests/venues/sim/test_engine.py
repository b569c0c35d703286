"""Pure matching-engine tests: priority, fills, time in force, fees, balances, errors."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venues.sim.engine import (
    BUY,
    CANCELED,
    EXPIRED,
    FEE_ACCOUNT,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    LIMIT_MAKER,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    SELL,
    EngineError,
    Instrument,
    MatchingEngine,
)

pytestmark = pytest.mark.timeout(120)

BTC = Instrument(
    symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    tick_size=D("0.01"),
    lot_size=D("0.00001"),
    min_qty=D("0.00001"),
    min_notional=D("5"),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


def make_engine(fee: str = "0.001") -> tuple[MatchingEngine, Clock]:
    clock = Clock()
    eng = MatchingEngine([BTC], clock, maker_fee=D(fee), taker_fee=D(fee))
    for name in ("alice", "bob", "carol"):
        eng.add_account(name, {"USDT": D("1000000"), "BTC": D("100")})
    return eng, clock


def limit(
    eng: MatchingEngine,
    acct: str,
    side: str,
    qty: str,
    price: str,
    tif: str = GTC,
    cid: str | None = None,
):  # type: ignore[no-untyped-def]
    return eng.place_order(
        acct,
        "BTCUSDT",
        side,
        LIMIT,
        quantity=D(qty),
        price=D(price),
        time_in_force=tif,
        client_order_id=cid,
    )


def bal(eng: MatchingEngine, acct: str, asset: str) -> tuple[D, D]:
    b = eng.account(acct).balance(asset)
    return b.free, b.locked


def test_price_time_priority() -> None:
    eng, clock = make_engine("0")
    a1 = limit(eng, "alice", SELL, "1", "100.00")
    clock.now += 1
    b1 = limit(eng, "bob", SELL, "1", "99.00")  # better price, later
    clock.now += 1
    a2 = limit(eng, "alice", SELL, "1", "99.00")  # same price, later than b1
    taker = limit(eng, "carol", BUY, "2.5", "100.00")
    assert [(t.price, t.qty) for t in taker.fills] == [
        (D("99.00"), D("1")),
        (D("99.00"), D("1")),
        (D("100.00"), D("0.5")),
    ]
    assert [eng.orders[t.order_id].order_id for t in taker.fills] == [taker.order_id] * 3
    assert b1.status == FILLED and a2.status == FILLED
    assert a1.status == PARTIALLY_FILLED and a1.executed_qty == D("0.5")
    assert taker.status == FILLED
    assert taker.cummulative_quote_qty == D("99") * 2 + D("50")
    assert not eng.is_crossed("BTCUSDT")
    maker_trades = eng.my_trades("bob", "BTCUSDT")
    assert maker_trades[0].is_maker and not maker_trades[0].is_buyer


def test_partial_fill_rests_and_locks_remainder_at_limit() -> None:
    eng, _ = make_engine("0")
    limit(eng, "alice", SELL, "1", "100.00")
    buy = limit(eng, "bob", BUY, "3", "101.00")
    assert buy.status == PARTIALLY_FILLED and buy.executed_qty == 1
    # paid 100 for 1, the 2 remaining stay locked at 101
    assert bal(eng, "bob", "USDT") == (D("1000000") - D("100") - D("202"), D("202"))
    assert eng.best_bid("BTCUSDT") == D("101.00")
    eng.cancel_order("bob", "BTCUSDT", buy.order_id)
    assert buy.status == CANCELED
    assert bal(eng, "bob", "USDT") == (D("999900"), D("0"))
    assert bal(eng, "bob", "BTC") == (D("101"), D("0"))


def test_ioc_remainder_expires() -> None:
    eng, _ = make_engine("0")
    limit(eng, "alice", SELL, "1", "100.00")
    ioc = limit(eng, "bob", BUY, "2", "100.00", IOC)
    assert ioc.status == EXPIRED and ioc.executed_qty == 1
    assert eng.best_bid("BTCUSDT") is None
    assert bal(eng, "bob", "USDT") == (D("999900"), D("0"))
    nothing = limit(eng, "bob", BUY, "1", "90.00", IOC)
    assert nothing.status == EXPIRED and nothing.executed_qty == 0


def test_fok_all_or_nothing() -> None:
    eng, _ = make_engine("0")
    limit(eng, "alice", SELL, "1", "100.00")
    limit(eng, "alice", SELL, "1", "101.00")
    fok = limit(eng, "bob", BUY, "3", "101.00", FOK)
    assert fok.status == EXPIRED and fok.executed_qty == 0 and not fok.fills
    assert bal(eng, "bob", "USDT") == (D("1000000"), D("0"))
    assert eng.depth("BTCUSDT")[1] == [(D("100.00"), D("1")), (D("101.00"), D("1"))]
    fok2 = limit(eng, "bob", BUY, "2", "101.00", FOK)
    assert fok2.status == FILLED and fok2.cummulative_quote_qty == D("201")


def test_market_orders_by_quantity_and_quote() -> None:
    eng, _ = make_engine("0")
    limit(eng, "alice", SELL, "1", "100.00")
    limit(eng, "alice", SELL, "1", "110.00")
    m = eng.place_order("bob", "BTCUSDT", BUY, MARKET, quantity=D("1.5"))
    assert m.status == FILLED and m.cummulative_quote_qty == D("155")
    assert m.price == 0 and m.time_in_force == GTC
    q = eng.place_order("bob", "BTCUSDT", BUY, MARKET, quote_order_qty=D("22"))
    assert q.status == FILLED
    assert q.executed_qty == D("0.2") and q.cummulative_quote_qty == D("22")
    assert q.orig_qty == q.executed_qty
    # runs out of liquidity: partial fill then EXPIRED
    m2 = eng.place_order("bob", "BTCUSDT", BUY, MARKET, quantity=D("1"))
    assert m2.status == EXPIRED and m2.executed_qty == D("0.3")
    assert bal(eng, "bob", "USDT")[1] == 0


def test_market_sell_by_quote() -> None:
    eng, _ = make_engine("0")
    limit(eng, "alice", BUY, "1", "100.00")
    o = eng.place_order("bob", "BTCUSDT", SELL, MARKET, quote_order_qty=D("50"))
    assert o.status == FILLED and o.executed_qty == D("0.5")
    assert bal(eng, "bob", "BTC") == (D("99.5"), D("0"))


def test_fees_charged_in_received_asset() -> None:
    clock = Clock()
    eng = MatchingEngine([BTC], clock, maker_fee=D("0.001"), taker_fee=D("0.002"))
    eng.add_account("maker", {"BTC": D("10")})
    eng.add_account("taker", {"USDT": D("10000")})
    limit(eng, "maker", SELL, "2", "1000.00")
    buy = limit(eng, "taker", BUY, "2", "1000.00")
    fill = buy.fills[0]
    assert fill.commission == D("0.004") and fill.commission_asset == "BTC"
    assert bal(eng, "taker", "BTC") == (D("1.996"), D("0"))
    assert bal(eng, "taker", "USDT") == (D("8000"), D("0"))
    maker_trade = eng.my_trades("maker", "BTCUSDT")[0]
    assert maker_trade.commission == D("2.000") and maker_trade.commission_asset == "USDT"
    assert bal(eng, "maker", "USDT") == (D("1998"), D("0"))
    fees = eng.account(FEE_ACCOUNT)
    assert fees.balance("BTC").free == D("0.004") and fees.balance("USDT").free == D("2")


def test_balances_locked_and_released() -> None:
    eng, _ = make_engine()
    buy = limit(eng, "alice", BUY, "1", "100.00")
    sell = limit(eng, "alice", SELL, "0.5", "200.00")
    assert bal(eng, "alice", "USDT") == (D("999900"), D("100"))
    assert bal(eng, "alice", "BTC") == (D("99.5"), D("0.5"))
    eng.cancel_order("alice", "BTCUSDT", buy.order_id)
    eng.cancel_order("alice", "BTCUSDT", orig_client_order_id=sell.client_order_id)
    assert bal(eng, "alice", "USDT") == (D("1000000"), D("0"))
    assert bal(eng, "alice", "BTC") == (D("100"), D("0"))


def test_insufficient_balance() -> None:
    eng, _ = make_engine()
    with pytest.raises(EngineError) as info:
        limit(eng, "alice", BUY, "20", "60000.00")
    assert (info.value.code, info.value.msg) == (
        -2010,
        "Account has insufficient balance for requested action.",
    )
    with pytest.raises(EngineError):
        limit(eng, "alice", SELL, "100.00001", "100.00")
    # locked funds are not spendable twice
    limit(eng, "alice", SELL, "60", "100.00")
    with pytest.raises(EngineError):
        limit(eng, "alice", SELL, "50", "100.00")


def test_duplicate_client_order_id_only_among_open_orders() -> None:
    eng, _ = make_engine()
    o = limit(eng, "alice", BUY, "1", "100.00", cid="abc")
    with pytest.raises(EngineError) as info:
        limit(eng, "alice", BUY, "1", "99.00", cid="abc")
    assert (info.value.code, info.value.msg) == (-2010, "Duplicate order sent.")
    limit(eng, "bob", BUY, "1", "99.00", cid="abc")  # other account: fine
    eng.cancel_order("alice", "BTCUSDT", orig_client_order_id="abc")
    again = limit(eng, "alice", BUY, "1", "98.00", cid="abc")  # no longer open: fine
    assert eng.get_order("alice", "BTCUSDT", orig_client_order_id="abc") is again
    assert eng.get_order("alice", "BTCUSDT", o.order_id).status == CANCELED


def test_filters_and_parameter_errors() -> None:
    eng, _ = make_engine()

    def code(**kw: object) -> tuple[int, str]:
        args: dict[str, object] = {"quantity": D("1"), "price": D("100"), "time_in_force": GTC}
        args.update(kw)
        with pytest.raises(EngineError) as info:
            eng.place_order("alice", "BTCUSDT", BUY, str(args.pop("type", LIMIT)), **args)  # type: ignore[arg-type]
        return info.value.code, info.value.msg

    assert code(price=D("100.001")) == (-1013, "Filter failure: PRICE_FILTER")
    assert code(quantity=D("0.000001")) == (-1013, "Filter failure: LOT_SIZE")
    assert code(quantity=D("0.000015")) == (-1013, "Filter failure: LOT_SIZE")
    assert code(quantity=D("0.01"), price=D("100")) == (-1013, "Filter failure: NOTIONAL")
    assert code(time_in_force=None)[0] == -1102
    assert code(price=None)[0] == -1102
    assert code(type=MARKET, price=None)[0] == -1106
    assert code(type=MARKET, price=None, time_in_force=None, quantity=None)[0] == -1102
    assert code(type=LIMIT_MAKER)[0] == -1106  # timeInForce not allowed
    with pytest.raises(EngineError) as info:
        eng.place_order(
            "alice", "NOPE", BUY, LIMIT, quantity=D("1"), price=D("1"), time_in_force=GTC
        )
    assert (info.value.code, info.value.msg) == (-1121, "Invalid symbol.")


def test_limit_maker() -> None:
    eng, _ = make_engine()
    limit(eng, "alice", SELL, "1", "100.00")
    with pytest.raises(EngineError) as info:
        eng.place_order("bob", "BTCUSDT", BUY, LIMIT_MAKER, quantity=D("1"), price=D("100.00"))
    assert info.value.msg == "Order would immediately match and take."
    ok = eng.place_order("bob", "BTCUSDT", BUY, LIMIT_MAKER, quantity=D("1"), price=D("99.99"))
    assert ok.status == NEW


def test_cancel_and_lookup_errors() -> None:
    eng, _ = make_engine()
    with pytest.raises(EngineError) as info:
        eng.cancel_order("alice", "BTCUSDT", 12345)
    assert (info.value.code, info.value.msg) == (-2011, "Unknown order sent.")
    with pytest.raises(EngineError) as info:
        eng.get_order("alice", "BTCUSDT", 12345)
    assert (info.value.code, info.value.msg) == (-2013, "Order does not exist.")
    o = limit(eng, "alice", BUY, "1", "100.00")
    with pytest.raises(EngineError):  # other accounts cannot see or cancel it
        eng.cancel_order("bob", "BTCUSDT", o.order_id)
    eng.cancel_order("alice", "BTCUSDT", o.order_id)
    with pytest.raises(EngineError) as info:  # already canceled
        eng.cancel_order("alice", "BTCUSDT", o.order_id)
    assert info.value.code == -2011
    with pytest.raises(EngineError) as info:
        eng.cancel_all("alice", "BTCUSDT")
    assert info.value.code == -2011
    limit(eng, "alice", BUY, "1", "100.00")
    limit(eng, "alice", SELL, "1", "200.00")
    assert len(eng.cancel_all("alice", "BTCUSDT")) == 2
    assert eng.open_orders("alice") == []


def test_order_ids_increase_and_trade_queries() -> None:
    eng, clock = make_engine("0")
    limit(eng, "alice", SELL, "1", "100.00")
    clock.now += 1000
    b = limit(eng, "bob", BUY, "0.5", "100.00")
    clock.now += 1000
    b2 = limit(eng, "bob", BUY, "0.5", "100.00")
    assert b2.order_id > b.order_id
    trades = eng.my_trades("bob", "BTCUSDT")
    assert [t.order_id for t in trades] == [b.order_id, b2.order_id]
    assert trades[1].id > trades[0].id
    assert eng.my_trades("bob", "BTCUSDT", from_id=trades[1].id) == [trades[1]]
    assert eng.my_trades("bob", "BTCUSDT", start_time=clock.now) == [trades[1]]
    assert eng.my_trades("bob", "BTCUSDT", limit=1) == [trades[1]]
    assert eng.my_trades("bob", "BTCUSDT", order_id=b.order_id) == [trades[0]]
    t = eng.ticker_24h("BTCUSDT")
    assert t.count == 2 and t.volume == D("1") and t.last_price == D("100.00")


# ---------------------------------------------------------------------- properties

ACCOUNTS = ("alice", "bob", "carol")

order_strategy = st.tuples(
    st.sampled_from(ACCOUNTS),
    st.sampled_from((BUY, SELL)),
    st.sampled_from((LIMIT, LIMIT, LIMIT, MARKET, LIMIT_MAKER)),
    st.sampled_from((GTC, GTC, IOC, FOK)),
    st.integers(min_value=1, max_value=400),  # qty in 0.01 BTC
    st.integers(min_value=9_000, max_value=11_000),  # price in 0.01 USDT
    st.booleans(),  # market by quote
)

action_strategy = st.one_of(
    st.tuples(st.just("place"), order_strategy),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=50)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(action_strategy, min_size=1, max_size=60), st.sampled_from(["0", "0.001", "0.0075"])
)
def test_conservation_and_uncrossed_book(actions: list[tuple[str, object]], fee: str) -> None:
    clock = Clock()
    eng = MatchingEngine([BTC], clock, maker_fee=D(fee), taker_fee=D(fee))
    for name in ACCOUNTS:
        eng.add_account(name, {"USDT": D("5000"), "BTC": D("3")})
    start = eng.total_assets()
    placed: list[int] = []
    for kind, payload in actions:
        clock.now += 1
        if kind == "cancel":
            assert isinstance(payload, int)
            if placed:
                oid = placed[payload % len(placed)]
                order = eng.orders[oid]
                try:
                    eng.cancel_order(order.account, "BTCUSDT", oid)
                except EngineError as exc:
                    assert exc.code == -2011 and not order.is_open
        else:
            acct, side, otype, tif, qty, price, by_quote = payload  # type: ignore[misc]
            kw: dict[str, object] = {}
            if otype == MARKET:
                if by_quote:
                    kw["quote_order_qty"] = D(price) / 100
                else:
                    kw["quantity"] = D(qty) / 100
            else:
                kw["quantity"] = D(qty) / 100
                kw["price"] = D(price) / 100
                if otype == LIMIT:
                    kw["time_in_force"] = tif
            try:
                o = eng.place_order(acct, "BTCUSDT", side, otype, **kw)  # type: ignore[arg-type]
            except EngineError as exc:
                assert exc.code in (-2010, -1013)
            else:
                placed.append(o.order_id)
                assert o.executed_qty <= o.orig_qty or o.orig_quote_order_qty > 0
        # invariants after every action
        assert not eng.is_crossed("BTCUSDT")
        assert eng.total_assets() == start
        for name in ACCOUNTS:
            for b in eng.account(name).balances.values():
                assert b.free >= 0 and b.locked >= 0
        # locked funds equal what the open orders hold
        for name in ACCOUNTS:
            held: dict[str, D] = {}
            for o in eng.open_orders(name):
                held[o.locked_asset] = held.get(o.locked_asset, D(0)) + o.locked_amount
            for asset, b in eng.account(name).balances.items():
                assert b.locked == held.get(asset, D(0)), (name, asset)
    # cancelling everything returns every lock
    for name in ACCOUNTS:
        for o in eng.open_orders(name):
            eng.cancel_order(name, "BTCUSDT", o.order_id)
        assert all(b.locked == 0 for b in eng.account(name).balances.values())
    assert eng.total_assets() == start
