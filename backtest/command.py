"""``oms backtest``: the command's options, progress bar and summary table.

    oms backtest --data FILE [--data FILE ...] --strategy module:Class [--param k=v ...]
                 [--config FILE] [--latency-ms N] [--seed N] [--router R] [--out DIR]

Pure (no Django, no database, no Redis): ``omsweb/cli.py`` hands it the parsed options.
Errors a user can make (a missing file, a bad config value, a strategy that cannot be
loaded) end with one line naming the file, key or option, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import IO, Any

from backtest.config import BacktestConfig, ConfigError, check_router, load_config
from backtest.data import DataError
from backtest.engine import BacktestError
from backtest.runner import parse_params, run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", action="append", required=True, metavar="FILE", help="a recording (repeatable)"
    )
    p.add_argument("--strategy", required=True, metavar="module:Class")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="k=v",
        help="strategy parameter (repeatable)",
    )
    p.add_argument(
        "--config", metavar="FILE", help="venues, latency, faults, risk limits (TOML or JSON)"
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        metavar="N",
        help="every venue's latencies (0: none)",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--router", default=None, help="sor | best | fixed:VENUE (orders without a venue)"
    )
    p.add_argument(
        "--out", default="backtest-out", metavar="DIR", help="output folder (default backtest-out)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


class ProgressBar:
    """One line on stderr, redrawn at most 10 times a second."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        if total:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * 30)
            text = f"\r[{bar:<30}] {frac * 100:5.1f}%  {done:,} events  {rate:,.0f}/s"
        else:
            text = f"\r{done:,} events  {rate:,.0f}/s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def summary_table(summary: dict[str, Any]) -> str:
    rows = [
        ("events", f"{summary['events']:,}"),
        ("events/s", f"{summary['events_per_s']:,}"),
        ("orders", str(summary["orders"])),
        ("fills", str(summary["fills"])),
        ("volume", summary["volume"]),
        ("fees", summary["fees"]),
        ("P&L realized", summary["pnl_realized"]),
        ("P&L total", summary["pnl_total"]),
        ("max drawdown", summary["max_drawdown"]),
        (
            "final position",
            ", ".join(f"{k} {v}" for k, v in summary["final_position"].items()) or "flat",
        ),
        ("denials", _counts(summary["denials"])),
        ("rejects", _counts(summary["rejects"])),
        ("in doubt", _counts(summary["in_doubt"])),
        (
            "latency p50 ms",
            ", ".join(f"{k[:-7]} {v}" for k, v in summary["latency"].items() if v is not None),
        ),
        ("data issues", str(summary["data_issues"].get("total", 0))),
        ("strategy errors", str(summary["strategy_errors"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "none"


def main(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        config = load_config(Path(args.config)) if args.config else BacktestConfig()
        if args.router:
            from dataclasses import replace

            config = replace(config, router=check_router(args.router))
        params = parse_params(args.param)
        show = sys.stderr.isatty() and not args.no_progress
        bar = ProgressBar(err) if show else None
        out = Path(args.out)
        result = run(
            data=[Path(d) for d in args.data],
            strategy=args.strategy,
            params=params,
            config=config,
            latency_ms=args.latency_ms,
            seed=args.seed,
            out_dir=out,
            progress=bar,
            count_total=show,
        )
        if bar is not None:
            bar.close()
    except (BacktestError, ConfigError, DataError) as exc:
        print(f"oms backtest: error: {exc}", file=err)
        return 2
    s = result.summary
    print(summary_table(s))
    for message in s["strategy_error_messages"][:5]:
        print(f"  strategy error: {message}", file=err)
    for issue in s["data_issues"].get("first", [])[:5]:
        print(f"  data: {issue}", file=err)
    print(f"wrote {', '.join(p.name for p in result.paths)} to {out}")
    return 0
