"""The files a run writes into its output folder (``backtest.report`` reads exactly these).

* ``summary.json``: the figures (``backtest.metrics.Metrics.summary``); everything but
  ``timing`` and ``events_per_s`` is the same for the same data, configuration and seed.
* ``orders.csv``: client_order_id,parent,venue,symbol,side,type,quantity,price,
  time_in_force,status,filled_quantity,average_price,reason,created_ts,ack_ts,done_ts,
  ack_latency_ms
* ``fills.csv``: ts,client_order_id,venue,symbol,side,quantity,price,fee,liquidity,mid,
  slippage_bps,markout_1s_bps,markout_5s_bps
* ``series.csv``: ts,symbol,mid,position,equity,drawdown (at most 5,000 rows)
* ``latency.csv``: kind,venue,ms (kind feed|ack|fill; at most 20,000 rows)

Times (``*_ts``) are epoch seconds with microseconds, the recording's clock.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backtest.metrics import SERIES_MAX, _s

if TYPE_CHECKING:
    from backtest.engine import Backtest

ORDER_COLUMNS = (
    "client_order_id,parent,venue,symbol,side,type,quantity,price,time_in_force,status,"
    "filled_quantity,average_price,reason,created_ts,ack_ts,done_ts,ack_latency_ms"
).split(",")
FILL_COLUMNS = (
    "ts,client_order_id,venue,symbol,side,quantity,price,fee,liquidity,mid,slippage_bps,"
    "markout_1s_bps,markout_5s_bps"
).split(",")
SERIES_COLUMNS = ["ts", "symbol", "mid", "position", "equity", "drawdown"]
LATENCY_COLUMNS = ["kind", "venue", "ms"]


def ts(ns: int | None) -> str:
    return "" if ns is None else f"{ns / 1e9:.6f}"


def dec(value: Decimal | None) -> str:
    return "" if value is None else _s(value)


def num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def write_outputs(out_dir: Path, bt: Backtest, summary: dict[str, Any]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    m = bt.metrics
    paths = []

    path = out_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=False, default=str) + "\n")
    paths.append(path)

    path = out_dir / "orders.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(ORDER_COLUMNS)
        for o in m.orders:
            ack_ms = None if o.ack_ns is None else (o.ack_ns - o.created_ns) / 1e6
            w.writerow(
                [
                    o.client_order_id,
                    o.parent or "",
                    o.venue or "",
                    o.symbol,
                    o.side,
                    o.type,
                    dec(o.quantity),
                    dec(o.price),
                    o.time_in_force,
                    o.status,
                    dec(o.filled_quantity),
                    dec(o.average_price),
                    o.reason,
                    ts(o.created_ns),
                    ts(o.ack_ns),
                    ts(o.done_ns),
                    "" if ack_ms is None else f"{ack_ms:.3f}",
                ]
            )
    paths.append(path)

    path = out_dir / "fills.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FILL_COLUMNS)
        for row in m.fills:
            f = row.fill
            w.writerow(
                [
                    ts(f.ts_ns),
                    f.client_order_id,
                    f.venue,
                    f.symbol,
                    f.side,
                    dec(f.quantity),
                    dec(f.price),
                    dec(f.fee),
                    f.liquidity,
                    dec(f.mid),
                    num(row.slippage_bps),
                    num(row.markout_1s),
                    num(row.markout_5s),
                ]
            )
    paths.append(path)

    path = out_dir / "series.csv"
    rows = m.series
    if len(rows) > SERIES_MAX:
        keep = SERIES_MAX / len(rows)
        rows = [r for i, r in enumerate(rows) if int(i * keep) != int((i - 1) * keep) or i == 0][
            :SERIES_MAX
        ]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SERIES_COLUMNS)
        for t, symbol, mid, pos, equity, drawdown in rows:
            w.writerow([ts(t), symbol, dec(mid), dec(pos), dec(equity), dec(drawdown)])
    paths.append(path)

    path = out_dir / "latency.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LATENCY_COLUMNS)
        for kind, samples in m.latency.items():
            for venue, ms in samples.rows:
                w.writerow([kind, venue, f"{ms:.3f}"])
    paths.append(path)

    if m.routes:
        path = out_dir / "routes.json"
        path.write_text(json.dumps(m.routes[:5000], indent=1) + "\n")
        paths.append(path)
    return paths
