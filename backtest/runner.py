"""One backtest from the command line's arguments to the output folder (pure: the
``oms backtest`` command in ``omsweb/cli.py`` parses arguments and prints)."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from backtest.config import BacktestConfig
from backtest.data import DataError, Issues, Source, iter_events
from backtest.engine import Backtest, BacktestError
from backtest.results import write_outputs
from backtest.strategy import Strategy, StrategyParamError, StrategyRef


@dataclass
class RunResult:
    summary: dict[str, Any]
    backtest: Backtest
    issues: Issues
    paths: list[Path]


def parse_params(items: Sequence[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BacktestError(f"--param {item!r}: expected key=value")
        params[key.strip()] = value
    return params


def load_strategy(ref: str, params: dict[str, str]) -> Strategy:
    """``module:Class`` -> an instance, with ``params``; a clear message for each way it
    can go wrong (no module, no class, not a Strategy, its constructor refuses)."""
    try:
        sref = StrategyRef.parse(ref)
    except ValueError as exc:
        raise BacktestError(str(exc)) from None
    try:
        module = _import(sref.module)
    except ImportError as exc:
        raise BacktestError(
            f"--strategy {ref}: cannot import module {sref.module!r} ({exc})"
        ) from None
    except Exception as exc:
        raise BacktestError(
            f"--strategy {ref}: importing {sref.module!r} raised {type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, sref.name, None)
    if cls is None:
        raise BacktestError(f"--strategy {ref}: module {sref.module!r} has no {sref.name!r}")
    if not isinstance(cls, type) or not issubclass(cls, Strategy):
        raise BacktestError(
            f"--strategy {ref}: {sref.name!r} is not a subclass of backtest.Strategy"
        )
    try:
        return cls(**params)
    except StrategyParamError as exc:
        raise BacktestError(str(exc)) from None
    except TypeError as exc:
        raise BacktestError(f"--strategy {ref}: {exc}") from None


def _import(name: str) -> ModuleType:
    """A module by name (the current folder is searched too, as ``python -m`` does), or a
    ``.py`` file by path."""
    if name.endswith(".py") or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise ImportError(f"no file {name}")
        spec = importlib.util.spec_from_file_location(f"oms_strategy_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{name} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.append(cwd)
    return importlib.import_module(name)


def count_lines(paths: Sequence[Path]) -> int:
    """Lines of the recordings (for a progress bar's total)."""
    total = 0
    for path in paths:
        try:
            with path.open("rb") as raw:
                gz = raw.read(2) == b"\x1f\x8b"
            opener: Any = gzip.open if gz else open
            with opener(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    total += chunk.count(b"\n")
        except (OSError, EOFError):
            pass
    return total


def run(
    *,
    data: Sequence[Path | Source],
    strategy: str | Strategy,
    params: dict[str, str] | None = None,
    config: BacktestConfig | None = None,
    latency_ms: float | None = None,
    seed: int | None = None,
    out_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    count_total: bool = False,
    report: bool = True,
) -> RunResult:
    """Run a backtest; write the output folder when ``out_dir`` is given."""
    cfg = config or BacktestConfig()
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    if latency_ms is not None:
        if latency_ms < 0:
            raise BacktestError(f"--latency-ms {latency_ms}: must be >= 0")
        cfg = cfg.with_latency_ms(latency_ms)
    params = params or {}
    strat = load_strategy(strategy, params) if isinstance(strategy, str) else strategy
    issues = Issues()
    try:
        events = iter_events(data, issues=issues)
    except DataError as exc:
        raise BacktestError(str(exc)) from None
    total = (
        count_lines([d.path if isinstance(d, Source) else Path(d) for d in data])
        if count_total
        else 0
    )
    bt = Backtest(cfg, strat, params=params, progress=progress)
    t0 = time.perf_counter()
    bt.run(events, total=total)
    wall = time.perf_counter() - t0
    if bt.metrics.events == 0:
        raise BacktestError("no market events in the data: nothing to replay" + _issue_hint(issues))
    bt.metrics.timing = {
        "wall_s": round(wall, 3),
        "events_per_s": round(bt.metrics.events / wall) if wall else 0.0,
    }
    summary = bt.metrics.summary(bt)
    summary["data_issues"] = {
        "total": issues.total,
        "by_kind": dict(sorted(issues.counts.items())),
        "first": [str(i) for i in issues.items[:20]],
    }
    paths: list[Path] = []
    if out_dir is not None:
        paths = write_outputs(out_dir, bt, summary)
        if report:
            paths.append(write_report(out_dir))
    return RunResult(summary, bt, issues, paths)


def write_report(out_dir: Path) -> Path:
    """``report.html`` from the files just written (``backtest.report``)."""
    report_module = importlib.import_module("backtest.report")
    path: Path = report_module.write_report(out_dir)
    return path


def _issue_hint(issues: Issues) -> str:
    if not issues.total:
        return ""
    return f" ({issues.total} line(s) could not be used; first: {issues.items[0]})"
