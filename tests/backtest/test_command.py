"""``oms backtest`` as a user runs it: a subprocess with no database, Redis or Django
settings in its environment; what it writes, and one clear line for each bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .synthetic import write_recording

ROOT = Path(__file__).resolve().parents[2]
OMS = [sys.executable, "-c", "from omsweb.cli import main; main()"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return write_recording(tmp_path_factory.mktemp("rec") / "testusdt_1.txt", steps=1500)


def oms(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["OMS_HOME"] = str(tmp_path / "home")  # must stay absent: no embedded services
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [*OMS, "backtest", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_backtest_command_writes_the_outputs_and_a_summary_table_without_services(
    recording, tmp_path
):
    out = tmp_path / "out"

    proc = oms(
        tmp_path,
        "--data", str(recording),
        "--strategy", "backtest.examples.market_maker:MarketMaker",
        "--param", "qty=0.1", "--param", "tick=0.01",
        "--seed", "3", "--out", str(out),
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    assert "P&L total" in proc.stdout and "latency p50 ms" in proc.stdout
    names = {p.name for p in out.iterdir()}
    assert {
        "summary.json",
        "orders.csv",
        "fills.csv",
        "series.csv",
        "latency.csv",
        "report.html",
    } <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["orders"] > 0 and summary["seed"] == 3
    assert (out / "orders.csv").read_text().splitlines()[0] == (
        "client_order_id,parent,venue,symbol,side,type,quantity,price,time_in_force,status,"
        "filled_quantity,average_price,reason,created_ts,ack_ts,done_ts,ack_latency_ms"
    )
    assert len((out / "series.csv").read_text().splitlines()) <= 5001
    assert not (tmp_path / "home").exists()  # no embedded PostgreSQL/Redis was started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.gz"], "missing.gz: no such file"),
        (["--param", "qty=lots"], "--param qty='lots': expected Decimal"),
        (["--param", "novalue"], "--param 'novalue': expected key=value"),
        (
            ["--strategy", "backtest.examples.twap:Nope"],
            "module 'backtest.examples.twap' has no 'Nope'",
        ),
        (["--strategy", "backtest.examples.twap"], "expected module:Class"),
        (["--config", "cfg.toml"], "cfg.toml: venue[0].maker_fee: 'x' is not a number"),
        (["--latency-ms", "-1"], "--latency-ms -1.0: must be >= 0"),
        (["--router", "fastest"], "router: 'fastest' is not sor, best or fixed:<venue>"),
    ],
)
def test_bad_input_ends_with_one_clear_line_and_status_2(recording, tmp_path, args, message):
    (tmp_path / "cfg.toml").write_text('[[venue]]\nname = "a"\nmaker_fee = "x"\n')
    base = {"--data": str(recording), "--strategy": "backtest.examples.market_maker:MarketMaker"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    argv = [x for kv in base.items() for x in kv]
    if "--param" in args and args[1] != "novalue":
        argv += ["--param", args[1]]

    proc = oms(tmp_path, *argv)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().startswith("oms backtest: error:")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_same_seed_same_files_across_processes_whatever_the_hash_seed(recording, tmp_path):
    outs = []
    for hash_seed in ("1", "2"):
        os.environ["PYTHONHASHSEED"] = hash_seed
        try:
            out = tmp_path / f"out{hash_seed}"
            proc = oms(
                tmp_path,
                "--data", str(recording),
                "--strategy", "backtest.examples.market_maker:MarketMaker",
                "--param", "qty=0.2", "--seed", "9", "--out", str(out),
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            outs.append(out)
        finally:
            os.environ.pop("PYTHONHASHSEED", None)
    a, b = (json.loads((o / "summary.json").read_text()) for o in outs)
    for s in (a, b):
        s.pop("timing"), s.pop("events_per_s")
    assert a == b
    for name in ("orders.csv", "fills.csv", "series.csv", "latency.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_a_strategy_in_the_users_folder_or_file(recording, tmp_path):
    (tmp_path / "mine.py").write_text(
        "from backtest import Strategy\n\n"
        "class Once(Strategy):\n"
        "    def on_trade(self, ctx, trade):\n"
        "        if not ctx.open_orders() and ctx.position(trade.symbol) == 0:\n"
        "            ctx.submit(symbol=trade.symbol, side='buy', type='market', quantity='0.1')\n"
    )

    for ref in ("mine:Once", str(tmp_path / "mine.py") + ":Once"):
        proc = oms(
            tmp_path, "--data", str(recording), "--strategy", ref, "--out", str(tmp_path / "o")
        )

        assert proc.returncode == 0, proc.stderr
        assert json.loads((tmp_path / "o" / "summary.json").read_text())["fills"] >= 1


def test_progress_bar_draws_one_line_with_a_total_and_without():
    import io

    from backtest.command import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(out)
    bar(500, 1000)
    bar.last = 0.0
    bar(1000, 1000)
    bar.close()
    text = out.getvalue()
    assert "\r[###############               ]  50.0%  500 events" in text
    assert " 100.0%  1,000 events" in text and text.endswith("\n")
    out = io.StringIO()
    ProgressBar(out)(42, 0)
    assert out.getvalue().startswith("\r42 events")
