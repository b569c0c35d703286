"""OMS_HOME is private to its owner (issue 13, item 1: the embedded Redis's data files
were world-readable)."""

from __future__ import annotations

import stat

from omsweb import embedded


def test_make_private_when_files_are_world_readable_then_owner_only(tmp_path):
    home = tmp_path / "oms"
    (home / "redis").mkdir(parents=True)
    dump = home / "redis" / "appendonly.aof"
    dump.write_text("secret")
    dump.chmod(0o644)
    (home / "redis").chmod(0o755)
    # Act
    embedded.make_private(home)
    # Assert
    for path in (home, home / "redis"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600


def test_make_private_when_home_missing_then_created_0700(tmp_path):
    home = tmp_path / "new"
    embedded.make_private(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
