"""CPU time the stack spends per order, by process, and the round trips of one submit.

On the 2-core machine every process of the stack (web, workers, PostgreSQL, Redis, the
simulated exchange) shares the same two cores, so the sustained order rate can be no
higher than ``cores / (CPU seconds per order, summed over every process)``. Wall-clock
figures move with whatever else runs on the machine; CPU seconds per order barely do,
so they say which process to make cheaper, and whether a change did.

Linux only (``/proc``): elsewhere ``CpuMeter`` measures nothing and the bench leaves the
figures out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process, or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def _all_processes() -> dict[int, tuple[int, float]]:
    out = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            out[int(entry.name)] = st
    return out


def cpu_by_role(roles: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each role's processes and all their descendants
    (uvicorn's and Celery's children, PostgreSQL's backends) that are alive now."""
    procs = _all_processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for role, roots in roles.items():
        total, todo, seen = 0.0, list(roots), set()
        while todo:
            pid = todo.pop()
            if pid in seen or pid not in procs:
                continue
            seen.add(pid)
            total += procs[pid][1]
            todo.extend(children.get(pid, ()))
        out[role] = total
    return out


def available() -> bool:
    return (PROC / "self" / "stat").exists()


class CpuMeter:
    """CPU seconds per role between ``start`` and ``stop``. A process that exits in
    between loses its share (none of the stack's do during a burst)."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self.roles = roles
        self._before: dict[str, float] = {}

    def start(self) -> None:
        self._before = cpu_by_role(self.roles)

    def stop(self) -> dict[str, float]:
        after = cpu_by_role(self.roles)
        return {role: after[role] - self._before.get(role, 0.0) for role in self.roles}


def per_order(
    used: dict[str, float], orders: int, prefix: str = "burst_cpu_ms_per_order"
) -> dict[str, float]:
    """``{prefix}_{role}`` in CPU ms per order, their ``_total``, and the rate the
    machine's cores could sustain if CPU were all that limited it."""
    if orders <= 0:
        return {}
    out = {f"{prefix}_{role}": round(s / orders * 1e3, 2) for role, s in sorted(used.items())}
    total = sum(used.values()) / orders * 1e3
    out[f"{prefix}_total"] = round(total, 2)
    if total > 0:
        out["orders_per_s_cpu_bound"] = round((os.cpu_count() or 1) * 1e3 / total, 1)
    return out


def pid_file(path: Path) -> int | None:
    """The pid on the first line of ``path`` (PostgreSQL's postmaster.pid, redis.pid)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- round trips of one request, in this process ------------------------------------


@contextmanager
def round_trips() -> Iterator[dict[str, Any]]:
    """Count what this process sends while the block runs: database statements (with
    Django's query log: each statement is a round trip, ``BEGIN`` and ``COMMIT``
    included) and Redis round trips (each ``send_packed_command`` of redis-py: a
    command, or a whole pipeline). The dict is filled when the block ends."""
    import redis.connection
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts: dict[str, Any] = {}
    cls = redis.connection.AbstractConnection
    original: Callable[..., Any] = cls.send_packed_command
    sent = 0

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal sent
        sent += 1
        return original(self, *args, **kwargs)

    cls.send_packed_command = counting  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            yield counts
    finally:
        cls.send_packed_command = original  # type: ignore[method-assign]
    counts["db"] = len(queries.captured_queries)
    counts["redis"] = sent
