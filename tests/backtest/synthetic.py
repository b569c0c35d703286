"""A small recording in the recorded-feed format, generated (seeded): a book that walks
around 100.00 with a 0.01 tick, depth diffs, trades and tickers, so that the engine's
tests mean something without the shared real data."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

TICK = Decimal("0.01")


def _lvl(price: Decimal, qty: Decimal) -> list[str]:
    return [f"{price:.2f}", f"{qty:.4f}"]


def write_recording(
    path: Path,
    *,
    seed: int = 1,
    steps: int = 2_000,
    symbol: str = "TESTUSDT",
    start_ns: int = 1_700_000_000 * 10**9,
) -> Path:
    rng = random.Random(seed)
    mid_ticks = 10_000  # 100.00
    uid = 1_000
    lines: list[tuple[int, dict[str, object]]] = []
    t = start_ns
    stream = symbol.lower()

    def book_levels(mid: int) -> tuple[list[list[str]], list[list[str]]]:
        bids = [_lvl(Decimal(mid - 1 - i) * TICK, Decimal(1 + i % 3)) for i in range(20)]
        asks = [_lvl(Decimal(mid + 1 + i) * TICK, Decimal(1 + i % 3)) for i in range(20)]
        return bids, asks

    bids, asks = book_levels(mid_ticks)
    lines.append((t, {"lastUpdateId": uid, "bids": bids, "asks": asks}))
    for _ in range(steps):
        t += rng.randrange(5, 60) * 1_000_000  # 5..60 ms
        r = rng.random()
        if r < 0.35:  # a trade at the touch
            side_buy = rng.random() < 0.5
            price = Decimal(mid_ticks + (1 if side_buy else -1)) * TICK
            qty = Decimal(rng.randrange(1, 8)) / 10
            lines.append(
                (
                    t,
                    {
                        "stream": f"{stream}@trade",
                        "data": {
                            "e": "trade",
                            "s": symbol,
                            "t": uid,
                            "p": f"{price:.2f}",
                            "q": f"{qty:.4f}",
                            "m": not side_buy,
                        },
                    },
                )
            )
        elif r < 0.6:  # the book moves one tick: the old touch goes, a level appears beyond
            move = 1 if rng.random() < 0.5 else -1
            old = mid_ticks
            mid_ticks += move
            b: list[list[str]] = []
            a: list[list[str]] = []
            if move > 0:
                a.append(_lvl(Decimal(old + 1) * TICK, Decimal(0)))
                b.append(_lvl(Decimal(mid_ticks - 1) * TICK, Decimal(2)))
                a.append(_lvl(Decimal(mid_ticks + 20) * TICK, Decimal(1)))
            else:
                b.append(_lvl(Decimal(old - 1) * TICK, Decimal(0)))
                a.append(_lvl(Decimal(mid_ticks + 1) * TICK, Decimal(2)))
                b.append(_lvl(Decimal(mid_ticks - 20) * TICK, Decimal(1)))
            lines.append(
                (
                    t,
                    {
                        "stream": f"{stream}@depth@100ms",
                        "data": {
                            "e": "depthUpdate",
                            "s": symbol,
                            "U": uid + 1,
                            "u": uid + 2,
                            "b": b,
                            "a": a,
                        },
                    },
                )
            )
            uid += 2
        elif r < 0.8:  # size changes at the touch
            b = [_lvl(Decimal(mid_ticks - 1) * TICK, Decimal(rng.randrange(1, 30)) / 10)]
            a = [_lvl(Decimal(mid_ticks + 1) * TICK, Decimal(rng.randrange(1, 30)) / 10)]
            lines.append(
                (
                    t,
                    {
                        "stream": f"{stream}@depth@100ms",
                        "data": {
                            "e": "depthUpdate",
                            "s": symbol,
                            "U": uid + 1,
                            "u": uid + 1,
                            "b": b,
                            "a": a,
                        },
                    },
                )
            )
            uid += 1
        else:
            lines.append(
                (
                    t,
                    {
                        "stream": f"{stream}@bookTicker",
                        "data": {
                            "u": uid,
                            "s": symbol,
                            "b": f"{Decimal(mid_ticks - 1) * TICK:.2f}",
                            "B": "1.0000",
                            "a": f"{Decimal(mid_ticks + 1) * TICK:.2f}",
                            "A": "1.0000",
                        },
                    },
                )
            )
    path.write_text(
        "".join(f"{ts} {json.dumps(msg, separators=(',', ':'))}\n" for ts, msg in lines)
    )
    return path
