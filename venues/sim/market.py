"""Seeded synthetic market: "house" liquidity around a randomly walking mid price.

Pure module (no I/O, no asyncio). For every symbol the model keeps a book of house
orders, ``levels`` deep on each side, around a mid that does a bounded geometric random
walk. ``step(now_ms)`` moves the mid and re-quotes: the house cancels its quotes and
places new GTC limit orders at the new prices. A new house quote that crosses a resting
user order trades with it (the user is the maker), so resting user limit orders get
filled as the mid moves through them. Optionally the house also sends small market
orders (``taker_rate_per_s``) that hit the top of the book, which produces public trades
and partially fills user orders resting at the best price.

Deterministic for a given seed and sequence of ``step`` times.

Venues that look like one market: with ``fundamental_seed`` set, the mid does not walk on
its own but follows a :class:`Fundamental` price, a function of wall-clock time and that
seed alone, so two simulators started apart (``sim-a``, ``sim-b``) given the same seed
see the same fundamental. Each venue adds its own basis, a mean-reverting deviation of a
few basis points drawn from its own seed: their mids differ by a few bps, which venue is
cheaper changes over time, and a consolidated market crossed net of fees is rare.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from decimal import Decimal

from venues.sim.engine import (
    BUY,
    GTC,
    LIMIT,
    MARKET,
    SELL,
    EngineError,
    MatchingEngine,
    floor_to_step,
)

HOUSE_ACCOUNT = "__house__"
HOUSE_BALANCE = Decimal("1000000000000")


@dataclass
class SymbolMarketConfig:
    """Synthetic market parameters for one symbol (exchange id, e.g. ``BTCUSDT``)."""

    mid: Decimal
    spread_ticks: int = 2  # best ask - best bid, in ticks (>= 1)
    level_spacing_ticks: int = 10  # distance between consecutive house levels
    levels: int = 10  # house levels on each side
    size_per_level: Decimal = Decimal("1")  # mean base quantity per level (before scale)
    size_growth: Decimal = Decimal("0.25")  # deeper levels are larger by this fraction each
    volatility: float = 0.0005  # stdev of log-return per sqrt(second)
    max_drift: float = 0.2  # mid stays within anchor * (1 +/- max_drift)
    taker_rate_per_s: float = 0.5  # house market orders per second (Poisson)
    depth_scale: Decimal = Decimal("1")
    # None: the mid walks on its own; an int: it follows the shared Fundamental of that seed
    fundamental_seed: int | None = None
    basis_bps: float = 2.0  # stdev of this venue's deviation from the fundamental
    basis_half_life_s: float = 5.0  # how fast the deviation reverts


class Fundamental:
    """A seeded price path as a pure function of time: ``anchor * ratio(t_ms)``.

    A sum of sines with seeded periods (20 s to 6 h) and phases whose amplitudes grow
    with the square root of the period, as a random walk's moves do; so it wanders like
    a price, stays within a few percent over a day, and any process with the same seed
    computes the same value at the same time without sharing state.
    """

    PERIODS_S = (20.0, 45.0, 120.0, 300.0, 900.0, 2_700.0, 7_200.0, 21_600.0)

    def __init__(self, seed: int, volatility: float) -> None:
        rng = random.Random(f"fundamental:{seed}")
        self.terms = [
            (
                volatility * math.sqrt(period) * rng.uniform(0.3, 0.6),
                2 * math.pi / (period * rng.uniform(0.8, 1.25) * 1000.0),
                rng.uniform(0, 2 * math.pi),
            )
            for period in self.PERIODS_S
        ]

    def ratio(self, t_ms: int) -> float:
        return math.exp(sum(a * math.sin(w * t_ms + phase) for a, w, phase in self.terms))


@dataclass
class _SymbolState:
    config: SymbolMarketConfig
    anchor: Decimal
    mid: Decimal
    rng: random.Random
    last_ms: int | None = None
    house_orders: list[int] = field(default_factory=list)
    fundamental: Fundamental | None = None
    basis: float = 0.0  # this venue's relative deviation from the fundamental


class MarketModel:
    """Drives house liquidity for every configured symbol of a :class:`MatchingEngine`."""

    def __init__(
        self,
        engine: MatchingEngine,
        configs: dict[str, SymbolMarketConfig],
        seed: int = 0,
        house_account: str = HOUSE_ACCOUNT,
    ) -> None:
        self.engine = engine
        self.seed = seed
        self.house = house_account
        if house_account not in engine.accounts:
            assets: set[str] = set()
            for inst in engine.instruments.values():
                assets.update((inst.base, inst.quote))
            engine.add_account(
                house_account,
                dict.fromkeys(sorted(assets), HOUSE_BALANCE),
                maker_fee=Decimal(0),
                taker_fee=Decimal(0),
                keep_history=False,
                check_limits=False,
            )
        self.states: dict[str, _SymbolState] = {}
        for symbol, cfg in configs.items():
            inst = engine.instrument(symbol)
            mid = floor_to_step(Decimal(cfg.mid), inst.tick_size)
            self.states[symbol] = _SymbolState(
                config=replace(cfg, mid=mid),
                anchor=mid,
                mid=mid,
                rng=random.Random(f"{seed}:{symbol}"),
                fundamental=(
                    None
                    if cfg.fundamental_seed is None
                    else Fundamental(cfg.fundamental_seed, cfg.volatility)
                ),
            )

    # ------------------------------------------------------------------ control

    def mid(self, symbol: str) -> Decimal:
        return self.states[symbol].mid

    def set_mid(self, symbol: str, mid: Decimal, now_ms: int | None = None) -> None:
        """Jump the mid (and the random walk's anchor) and re-quote at once."""
        st = self.states[symbol]
        inst = self.engine.instrument(symbol)
        st.mid = floor_to_step(Decimal(mid), inst.tick_size)
        st.anchor = st.mid
        if st.fundamental is not None and now_ms is not None:
            # keep following the fundamental, from this price on
            ratio = st.fundamental.ratio(now_ms) * (1.0 + st.basis)
            st.anchor = Decimal(repr(float(st.mid) / ratio))
        self._requote(symbol)
        if now_ms is not None:
            st.last_ms = now_ms

    def update_config(self, symbol: str, **changes: object) -> None:
        st = self.states[symbol]
        st.config = replace(st.config, **changes)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ stepping

    def step(self, now_ms: int) -> None:
        """Advance every symbol to ``now_ms``: move the mid, re-quote, maybe take."""
        for symbol in self.states:
            self._step_symbol(symbol, now_ms)

    def _step_symbol(self, symbol: str, now_ms: int) -> None:
        st = self.states[symbol]
        cfg = st.config
        inst = self.engine.instrument(symbol)
        dt = 0.0 if st.last_ms is None else max(0.0, (now_ms - st.last_ms) / 1000.0)
        st.last_ms = now_ms
        if st.fundamental is not None:
            self._follow_fundamental(st, inst.tick_size, now_ms, dt)
        elif dt > 0 and cfg.volatility > 0:
            z = st.rng.gauss(0.0, 1.0)
            new_mid = float(st.mid) * math.exp(cfg.volatility * math.sqrt(dt) * z)
            lo = float(st.anchor) * (1.0 - cfg.max_drift)
            hi = float(st.anchor) * (1.0 + cfg.max_drift)
            if new_mid > hi:
                new_mid = 2 * hi - new_mid
            if new_mid < lo:
                new_mid = 2 * lo - new_mid
            new_mid = min(max(new_mid, lo), hi)
            tick = inst.tick_size
            st.mid = max(tick, (Decimal(repr(new_mid)) / tick).quantize(Decimal(1)) * tick)
        self._requote(symbol)
        if dt > 0 and cfg.taker_rate_per_s > 0:
            n = self._poisson(st.rng, cfg.taker_rate_per_s * dt)
            for _ in range(n):
                self._house_take(symbol)

    @staticmethod
    def _follow_fundamental(st: _SymbolState, tick: Decimal, now_ms: int, dt: float) -> None:
        """Mid = fundamental x (1 + basis); the basis is an Ornstein-Uhlenbeck process."""
        assert st.fundamental is not None
        cfg = st.config
        if dt > 0 and cfg.basis_bps > 0:
            keep = 0.5 ** (dt / max(cfg.basis_half_life_s, 1e-3))
            sigma = cfg.basis_bps / 10_000 * math.sqrt(1 - keep * keep)
            st.basis = st.basis * keep + st.rng.gauss(0.0, sigma)
        mid = float(st.anchor) * st.fundamental.ratio(now_ms) * (1.0 + st.basis)
        st.mid = max(tick, (Decimal(repr(mid)) / tick).quantize(Decimal(1)) * tick)

    @staticmethod
    def _poisson(rng: random.Random, lam: float) -> int:
        if lam <= 0:
            return 0
        limit = math.exp(-min(lam, 50.0))
        k = 0
        p = rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k

    def _level_size(self, st: _SymbolState, level: int, lot: Decimal, min_qty: Decimal) -> Decimal:
        cfg = st.config
        mean = cfg.size_per_level * cfg.depth_scale * (1 + cfg.size_growth * level)
        size = floor_to_step(mean * Decimal(repr(st.rng.uniform(0.5, 1.5))), lot)
        return max(size, min_qty)

    def _requote(self, symbol: str) -> None:
        st = self.states[symbol]
        cfg = st.config
        eng = self.engine
        inst = eng.instrument(symbol)
        tick = inst.tick_size
        eng.cancel_account_orders(self.house, symbol)
        spread = max(1, cfg.spread_ticks)
        bid_ticks = spread // 2
        ask_ticks = spread - bid_ticks
        best_bid = st.mid - bid_ticks * tick
        best_ask = st.mid + ask_ticks * tick
        spacing = max(1, cfg.level_spacing_ticks) * tick
        for i in range(cfg.levels):
            for side, price in ((BUY, best_bid - i * spacing), (SELL, best_ask + i * spacing)):
                if price < inst.min_price or price > inst.max_price:
                    continue
                qty = self._level_size(st, i, inst.lot_size, inst.min_qty)
                qty = min(qty, inst.max_qty)
                if price * qty < inst.min_notional:
                    qty = floor_to_step(inst.min_notional / price, inst.lot_size) + inst.lot_size
                try:
                    eng.place_order(
                        self.house,
                        symbol,
                        side,
                        LIMIT,
                        quantity=qty,
                        price=price,
                        time_in_force=GTC,
                    )
                except EngineError:
                    continue

    def _house_take(self, symbol: str) -> None:
        st = self.states[symbol]
        inst = self.engine.instrument(symbol)
        side = BUY if st.rng.random() < 0.5 else SELL
        qty = self._level_size(st, 0, inst.lot_size, inst.min_qty)
        qty = floor_to_step(qty * Decimal(repr(st.rng.uniform(0.05, 0.5))), inst.lot_size)
        qty = min(max(qty, inst.min_qty), inst.market_max_qty)
        try:
            self.engine.place_order(self.house, symbol, side, MARKET, quantity=qty)
        except EngineError:
            return
        # the take consumed house liquidity; restore the quotes at the same mid
        self._requote(symbol)
