"""A small hand-made backtest output directory (the files ``oms backtest`` writes), for the
report's tests and for the browser check that the page renders offline."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

T0 = 1723161253.0  # 2024-08-08 23:54:13 UTC, the shared recordings' start

ORDER_FIELDS = (
    "client_order_id,parent,venue,symbol,side,type,quantity,price,time_in_force,status,"
    "filled_quantity,average_price,reason,created_ts,ack_ts,done_ts,ack_latency_ms"
).split(",")
FILL_FIELDS = (
    "ts,client_order_id,venue,symbol,side,quantity,price,fee,liquidity,mid,slippage_bps,"
    "markout_1s_bps,markout_5s_bps"
).split(",")


def write_sample_run(out: Path, *, fills: int = 12, seconds: int = 120) -> Path:
    """A market maker's two minutes on BTC/USDT over two venues: ``fills`` fills (half buys),
    one reject, one denial, one order resolved from in doubt."""
    out.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(7)
    mids = []
    mid = 61000.0
    for i in range(seconds * 10):
        mid += rnd.gauss(0, 2.0)
        mids.append((T0 + i / 10, round(mid, 2)))
    orders, fill_rows = [], []
    position = 0.0
    for k in range(fills):
        ts, m = mids[(k + 1) * len(mids) // (fills + 2)]
        side = "buy" if k % 2 == 0 else "sell"
        venue = "sim-a" if k % 3 else "sim-b"
        price = round(m - 0.5 if side == "buy" else m + 0.5, 2)
        cid = f"mm-{k:04d}"
        orders.append(
            dict(
                client_order_id=cid,
                parent="",
                venue=venue,
                symbol="BTC/USDT",
                side=side,
                type="limit",
                quantity="0.010",
                price=f"{price:.2f}",
                time_in_force="GTC",
                status="FILLED",
                filled_quantity="0.010",
                average_price=f"{price:.2f}",
                reason="",
                created_ts=f"{ts - 1.5:.3f}",
                ack_ts=f"{ts - 1.48:.3f}",
                done_ts=f"{ts:.3f}",
                ack_latency_ms=f"{18 + rnd.random() * 12:.3f}",
            )
        )
        position += 0.01 if side == "buy" else -0.01
        fill_rows.append(
            dict(
                ts=f"{ts:.3f}",
                client_order_id=cid,
                venue=venue,
                symbol="BTC/USDT",
                side=side,
                quantity="0.010",
                price=f"{price:.2f}",
                fee=f"{price * 0.01 * 0.0002:.6f}",
                liquidity="maker",
                mid=f"{m:.2f}",
                slippage_bps=f"{(price - m) / m * 1e4 * (1 if side == 'buy' else -1):.4f}",
                markout_1s_bps=f"{rnd.gauss(0, 1):.4f}",
                markout_5s_bps=f"{rnd.gauss(0, 2):.4f}",
            )
        )
    orders.append(
        dict(
            client_order_id="mm-rej",
            parent="",
            venue="sim-b",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            quantity="0.010",
            price="60000.00",
            time_in_force="GTC",
            status="REJECTED",
            filled_quantity="0",
            average_price="",
            reason="-2010 insufficient balance <b>",
            created_ts=f"{T0 + 30:.3f}",
            ack_ts=f"{T0 + 30.02:.3f}",
            done_ts=f"{T0 + 30.02:.3f}",
            ack_latency_ms="20.000",
        )
    )
    orders.append(
        dict(
            client_order_id="mm-den",
            parent="",
            venue="sim-a",
            symbol="BTC/USDT",
            side="buy",
            type="market",
            quantity="5",
            price="",
            time_in_force="IOC",
            status="DENIED",
            filled_quantity="0",
            average_price="",
            reason="MAX_ORDER_NOTIONAL: notional=305000 > max=100000",
            created_ts=f"{T0 + 40:.3f}",
            ack_ts="",
            done_ts=f"{T0 + 40:.3f}",
            ack_latency_ms="",
        )
    )
    with (out / "orders.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ORDER_FIELDS)
        w.writeheader()
        w.writerows(orders)
    with (out / "fills.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, FILL_FIELDS)
        w.writeheader()
        w.writerows(fill_rows)
    with (out / "series.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "symbol", "mid", "position", "equity", "drawdown"])
        pos, peak = 0.0, 0.0
        fill_ts = sorted((float(r["ts"]), r["side"]) for r in fill_rows)
        j = 0
        for ts, m in mids:
            while j < len(fill_ts) and fill_ts[j][0] <= ts:
                pos += 0.01 if fill_ts[j][1] == "buy" else -0.01
                j += 1
            equity = 3.0 * math.sin((ts - T0) / 20) + (ts - T0) / 60
            peak = max(peak, equity)
            w.writerow(
                [
                    f"{ts:.3f}",
                    "BTC/USDT",
                    f"{m:.2f}",
                    f"{pos:.3f}",
                    f"{equity:.4f}",
                    f"{peak - equity:.4f}",
                ]
            )
    with (out / "latency.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "venue", "ms"])
        for kind, base in (("feed", 5.0), ("order", 12.0), ("ack", 25.0)):
            for venue in ("sim-a", "sim-b"):
                for _ in range(200):
                    w.writerow([kind, venue, f"{base * rnd.lognormvariate(0, 0.4):.3f}"])
    summary = {
        "events": len(mids) * 3,
        "events_per_s": 254321.5,
        "orders": len(orders),
        "fills": len(fill_rows),
        "volume": f"{0.01 * len(fill_rows):.3f}",
        "fees": "0.1464",
        "pnl_realized": "1.2500",
        "pnl_total": "-0.7300",
        "max_drawdown": "4.1000",
        "final_position": {"BTC/USDT": f"{position:.3f}"},
        "denials": {"MAX_ORDER_NOTIONAL": 1},
        "rejects": {"-2010 insufficient balance": 1},
        "in_doubt": {"resolved: executed at venue": 1, "unresolved": 0},
        "in_doubt_total": 1,
        "in_doubt_causes": {"timeout": 1},
        "latency_p50_ms": {"feed": 5.0, "order": 12.0, "ack": 25.0},
        "timing": {"read_s": 0.01, "run_s": 0.02},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out
