"""Smart order router benchmarks for ``make bench`` (in process, no stack).

* ``bench_sor_plan()``: ``routing.sor.plan`` for 5 venues x 50 levels a side
  (``sor_plan_p50_us``, ``sor_plan_p99_us``; target p50 <= 50 us). Seeded books around
  one mid with per-venue offsets, fees, lots, minimums, ages and scores; the orders mix
  sides, market and limit, and sizes from inside the best level to several venues deep.
* ``bench_sor_improvement()``: ``sor_improvement_bps``, what routing across the demo
  venues saves against the best single venue for the same order, in basis points of the
  fee-inclusive average price (positive: the router helped). The books come from the
  simulated exchange's own market model in process, configured as ``oms up`` starts
  sim-a and sim-b (``venues.sim.server.DEMO_VENUE_ARGS``: one fundamental price, each
  venue with its own basis, spread, depth and fees), stepped once a second over a few
  minutes of market time. At each sample, orders of several sizes on both sides are
  planned; each child is filled by walking its venue's book up to the child's pinned
  price (what the venue's matching engine does with an IOC limit taker) at the venue's
  taker fee, and so is the whole order at each single venue that can fill it.
  ``sor_improvement_bps`` is the mean over all orders (``sor_improvement_bps_<size>btc``
  per size; ``sor_improvement_split_share``: the share of orders split across both
  venues). The best single venue is picked with hindsight, order by order, so the
  figure is what splitting adds on top of always picking the right venue;
  ``sor_improvement_vs_first_venue_bps`` compares with what the OMS did before the router
  (the first enabled venue by name, sim-a).

Run alone: ``python -m bench --only sor``.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from bench.stats import pct

SYMBOL = "BTC/USDT"
VENUES = 5
LEVELS = 50
NOW = 1_750_000_000.0


def synthetic_books(seed: int = 15) -> tuple[list[object], dict[str, object]]:
    """5 venues x 50 levels a side around one mid, with their conditions."""
    from marketdata.book import MdState
    from marketdata.consolidated import VenueBook
    from routing.sor import VenueCondition

    rng = random.Random(seed)
    tick = Decimal("0.01")
    books: list[object] = []
    conditions: dict[str, object] = {}
    for i in range(VENUES):
        name = f"venue-{i}"
        # mids within a few bp of each other and levels a cent or a few apart, so that
        # larger orders sweep several venues
        mid = Decimal(60_000) + rng.randint(-100, 100) * tick
        half = rng.randint(1, 4) * tick
        spacing = rng.randint(5, 40) * tick
        asks = [(mid + half + k * spacing, _qty(rng)) for k in range(LEVELS)]
        bids = [(mid - half - k * spacing, _qty(rng)) for k in range(LEVELS)]
        fee = Decimal(rng.choice(["0.00095", "0.001"]))
        books.append(
            VenueBook(
                venue=name,
                symbol=SYMBOL,
                state=MdState.LIVE,
                bids=bids,
                asks=asks,
                ts=NOW - rng.uniform(0.0, 1.5),
                taker_fee=fee,
            )
        )
        conditions[name] = VenueCondition(
            venue=name,
            taker_fee=fee,
            lot_size=Decimal("0.00001"),
            min_qty=Decimal("0.00001"),
            min_notional=Decimal(5),
            tick_size=tick,
            balance=Decimal(rng.choice([2_000_000, 5_000_000])) if i % 2 else None,
            score=Decimal(rng.choice(["1", "0.95", "0.8"])),
        )
    return books, conditions


def _qty(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(1, 300_000)) / 100_000


def bench_sor_plan(n: int = 20_000) -> dict[str, float]:
    from routing.sor import OrderSpec, plan

    books, conditions = synthetic_books()
    orders = []
    for side in ("buy", "sell"):
        for size in ("0.05", "0.5", "2", "8", "25"):
            orders.append(OrderSpec(SYMBOL, side, "market", Decimal(size)))
            limit = Decimal(60_010) if side == "buy" else Decimal(59_990)
            orders.append(OrderSpec(SYMBOL, side, "limit", Decimal(size), limit))
    for order in orders * 50:  # warm up
        plan(order, books, conditions, NOW)  # type: ignore[arg-type]
    samples = []
    clock = time.perf_counter_ns
    for i in range(n):
        order = orders[i % len(orders)]
        t0 = clock()
        plan(order, books, conditions, NOW)  # type: ignore[arg-type]
        samples.append((clock() - t0) / 1_000)
    return {
        "sor_plan_p50_us": round(pct(samples, 0.5), 2),
        "sor_plan_p99_us": round(pct(samples, 0.99), 2),
        "sor_plan_n": n,
    }


# --- improvement on the demo venues ----------------------------------------------------

SIZES = ("0.1", "0.5", "1", "2", "5", "10")  # BTC; sim-a's best level is about 0.5
SAMPLES = 180  # one a second of market time
START_MS = 1_750_000_000_000


class DemoVenue:
    """One demo venue's matching engine and market model, as ``oms up`` configures it."""

    def __init__(self, name: str) -> None:
        from venues.sim.engine import MatchingEngine
        from venues.sim.market import MarketModel
        from venues.sim.server import DEMO_VENUE_ARGS, config_from_args, parse_args

        args = parse_args(["--name", name, "--symbols", SYMBOL, *DEMO_VENUE_ARGS[name]])
        config = config_from_args(args)
        self.name = name
        self.now_ms = START_MS
        self.instrument = config.symbols[0].instrument
        self.taker_fee = config.taker_fee
        self.engine = MatchingEngine(
            [s.instrument for s in config.symbols],
            lambda: self.now_ms,
            maker_fee=config.maker_fee,
            taker_fee=config.taker_fee,
        )
        self.market = MarketModel(
            self.engine, {s.instrument.symbol: s.market for s in config.symbols}, seed=config.seed
        )

    def step(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.market.step(now_ms)

    def book(self, now: float) -> object:
        from marketdata.book import MdState
        from marketdata.consolidated import VenueBook

        bids, asks = self.engine.depth(self.instrument.symbol, 100)
        return VenueBook(
            venue=self.name,
            symbol=SYMBOL,
            state=MdState.LIVE,
            bids=bids,
            asks=asks,
            ts=now,
            taker_fee=self.taker_fee,
        )

    def condition(self) -> object:
        from routing.sor import VenueCondition

        inst = self.instrument
        return VenueCondition(
            venue=self.name,
            taker_fee=self.taker_fee,
            lot_size=inst.lot_size,
            min_qty=inst.min_qty,
            min_notional=inst.min_notional,
            tick_size=inst.tick_size,
        )


def fill(
    levels: list[tuple[Decimal, Decimal]], quantity: Decimal, limit: Decimal | None, buy: bool
) -> tuple[Decimal, Decimal]:
    """(quantity filled, quote amount) of a taker walking ``levels`` up to ``limit``."""
    left, quote = quantity, Decimal(0)
    for price, qty in levels:
        if left <= 0 or (limit is not None and (price > limit if buy else price < limit)):
            break
        take = min(qty, left)
        left -= take
        quote += take * price
    return quantity - left, quote


def bench_sor_improvement(samples: int = SAMPLES) -> dict[str, float]:
    from routing.sor import OrderSpec, plan

    venues = [DemoVenue("sim-a"), DemoVenue("sim-b")]
    conditions = {v.name: v.condition() for v in venues}
    fees = {v.name: v.taker_fee for v in venues}
    by_size: dict[str, list[float]] = {s: [] for s in SIZES}
    vs_first: list[float] = []  # against today's choice: the first venue by name
    split = 0
    for k in range(samples):
        now_ms = START_MS + k * 1000
        for v in venues:
            v.step(now_ms)
        books = {v.name: v.book(now_ms / 1000) for v in venues}
        for side in ("buy", "sell"):
            buy = side == "buy"
            sign = 1 if buy else -1
            for size in SIZES:
                order = OrderSpec(SYMBOL, side, "market", Decimal(size))
                p = plan(order, list(books.values()), conditions, now_ms / 1000)  # type: ignore[arg-type]
                routed_qty, routed_cost = Decimal(0), Decimal(0)
                for child in p.children:
                    levels = _side(books[child.venue], buy)
                    qty, quote = fill(levels, child.quantity, child.price, buy)
                    routed_qty += qty
                    routed_cost += quote * (1 + sign * fees[child.venue])
                singles: dict[str, Decimal] = {}
                for name, book in books.items():
                    qty, quote = fill(_side(book, buy), order.quantity, None, buy)
                    if qty == order.quantity:
                        singles[name] = quote * (1 + sign * fees[name]) / qty
                if not singles or routed_qty == 0:
                    continue
                best = min(singles.values()) if buy else max(singles.values())
                routed = routed_cost / routed_qty
                by_size[size].append(float(sign * (best - routed) / best * 10_000))
                if "sim-a" in singles:
                    first = singles["sim-a"]
                    vs_first.append(float(sign * (first - routed) / first * 10_000))
                split += len(p.children) > 1
    every = [x for values in by_size.values() for x in values]
    out = {
        "sor_improvement_bps": round(sum(every) / len(every), 3),
        "sor_improvement_orders": len(every),
        "sor_improvement_split_share": round(split / len(every), 3),
        "sor_improvement_vs_first_venue_bps": round(sum(vs_first) / len(vs_first), 3),
    }
    for size, values in by_size.items():
        if values:
            out[f"sor_improvement_bps_{size}btc"] = round(sum(values) / len(values), 3)
    return out


def _side(book: object, buy: bool) -> list[tuple[Decimal, Decimal]]:
    levels: list[tuple[Decimal, Decimal]] = book.asks if buy else book.bids  # type: ignore[attr-defined]
    return levels
