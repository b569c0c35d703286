"""``OMS_DEMO_REPLAY=1``: ``oms up`` starts the demo venues replaying recordings it
generates once under OMS_HOME/replay; ``oms simex --replay`` passes the replay on."""

from __future__ import annotations

import pytest

from backtest.data import Snapshot, iter_events
from omsweb import cli


def test_processes_when_replay_then_every_demo_venue_follows_the_recordings_looped(tmp_path):
    paths = (tmp_path / "a.gz", tmp_path / "b.gz")
    procs = cli.processes(host="127.0.0.1", port=8000, venues=(), replay=paths, sim_fix=True)
    from venues.sim.server import DEMO_FIX_VENUE

    for name in (*cli.SIM_VENUES, DEMO_FIX_VENUE[0]):
        argv = procs[name]
        assert argv[argv.index("--replay") + 1] == str(paths[0])
        assert argv[len(argv) - argv[::-1].index("--replay")] == str(paths[1])
        assert "--loop" in argv
    plain = cli.processes(host="127.0.0.1", port=8000, venues=())
    assert "--replay" not in plain["sim-a"]


def test_demo_recordings_when_missing_then_written_once_and_readable(tmp_path, monkeypatch):
    # Arrange: shorter recordings than the demo's ten minutes
    monkeypatch.setattr(cli, "DEMO_RECORDING_MINUTES", 0.05)
    # Act
    first = cli.demo_recordings(tmp_path)
    stamps = [p.stat().st_mtime_ns for p in first]
    again = cli.demo_recordings(tmp_path)
    # Assert
    assert first == again and [p.stat().st_mtime_ns for p in again] == stamps
    assert [p.parent for p in first] == [tmp_path / "replay"] * 2
    symbols = {ev.symbol for ev in iter_events(first) if isinstance(ev, Snapshot)}
    assert symbols == {"BTCUSDT", "ETHUSDT"}


@pytest.mark.parametrize(("raw", "on"), [("", False), ("0", False), ("1", True), ("yes", True)])
def test_demo_replay_setting(monkeypatch, raw, on):
    monkeypatch.setenv("OMS_DEMO_REPLAY", raw)
    assert cli.demo_replay() is on


def test_demo_replay_when_misspelled_then_clear_error(monkeypatch):
    monkeypatch.setenv("OMS_DEMO_REPLAY", "maybe")
    with pytest.raises(SystemExit, match="OMS_DEMO_REPLAY must be 0 or 1"):
        cli.demo_replay()


def test_oms_simex_when_replay_then_the_server_gets_the_replay_arguments(monkeypatch, tmp_path):
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "_simex_credentials", lambda home: {"key": "k", "secret": "s"})
    monkeypatch.setattr("venues.sim.server.main", seen.append)
    with pytest.raises(SystemExit):
        cli.main(["simex", "--name", "sim-x", "--port", "0", "--replay", "r.gz",
                  "--speed", "3", "--loop"])  # fmt: skip
    argv = seen[0]
    assert argv[argv.index("--replay") + 1] == "r.gz"
    assert argv[argv.index("--speed") + 1] == "3.0" and "--loop" in argv


def test_simex_credentials_when_another_process_wrote_first_then_its_key_and_no_leftover(
    tmp_path, monkeypatch
):
    # A fresh OMS_HOME: every process of a stack creates the demo venues' key at once. The
    # file appears whole (written aside, then linked): a reader never sees it half-written
    # (the market-data process of a system-test stack died of an empty one), and when
    # another process linked its file first, that key is the one every process uses.
    import os

    real_link = os.link

    def link_after_another(src, dst):
        (tmp_path / "other").write_text('{"key": "theirs", "secret": "s"}')
        real_link(tmp_path / "other", dst)  # the other process won the race
        real_link(src, dst)  # -> FileExistsError

    monkeypatch.setattr(os, "link", link_after_another)
    assert cli._simex_credentials(tmp_path)["key"] == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "simex.json"]
    monkeypatch.setattr(os, "link", real_link)
    fresh = tmp_path / "fresh"
    key = cli._simex_credentials(fresh)["key"]
    assert [p.name for p in fresh.iterdir()] == ["simex.json"]
    assert (fresh / "simex.json").stat().st_mode & 0o777 == 0o600
    assert cli._simex_credentials(fresh)["key"] == key
