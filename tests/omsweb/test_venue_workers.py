"""Each venue's calls run on a worker of their own (``oms worker --venue``, and one per
enabled venue under ``oms up`` and the system-test stack)."""

from __future__ import annotations

import pytest

from omsweb import cli
from omsweb.stack import worker_argvs


def _argv(monkeypatch, *args: str) -> list[str]:
    ran: list[list[str]] = []
    monkeypatch.setattr(cli, "_prepare_env", lambda: None)
    monkeypatch.setattr(cli, "_exec", ran.append)
    with pytest.raises(SystemExit):
        cli.main(["worker", *args])
    return ran[0]


def test_worker_for_a_venue_consumes_only_that_venues_queue(monkeypatch):
    argv = _argv(monkeypatch, "--venue", "sim-b")
    assert argv[argv.index("-Q") + 1] == "oms.orders.sim-b"
    assert argv[argv.index("-n") + 1] == "orders-sim-b@%h"


def test_stack_runs_one_venue_worker_per_venue_and_reports_apart():
    argvs = worker_argvs(venues=("sim-a", "sim-b"))
    queues = {name: argv[argv.index("-Q") + 1] for name, argv in argvs.items()}
    assert queues == {
        "worker-urgent": "oms.urgent",
        "worker-reports": "oms.reports,oms.route",
        "worker-recon": "oms.recon",
        "worker-orders-sim-a": "oms.orders.sim-a",
        "worker-orders-sim-b": "oms.orders.sim-b",
    }


def test_process_table_with_a_fix_venue_then_its_session_process_and_opt_in_simulator():
    plain = cli.processes(host="127.0.0.1", port=8000)
    assert not any(name.startswith("fixvenue-") or name == "sim-fix" for name in plain)
    procs = cli.processes(
        host="127.0.0.1", port=8000, venues=("sim-a", "sim-fix"), fix_venues=("sim-fix",),
        sim_fix=True,
    )  # fmt: skip
    assert procs["fixvenue-sim-fix"][-4:] == ["omsweb.cli", "fixvenue", "--venue", "sim-fix"]
    assert procs["sim-fix"][procs["sim-fix"].index("--fix-port") + 1] == "8113"
    assert "worker-orders-sim-fix" in procs
