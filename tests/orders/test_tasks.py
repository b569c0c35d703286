"""Order tasks when the worker's database connection is gone (a restarted server)."""

from __future__ import annotations

import pytest
from celery.exceptions import Retry
from django.db import OperationalError

from orders import engine, tasks, venue_calls


@pytest.mark.parametrize(
    "task,module,step,args",
    [
        (tasks.submit_order, venue_calls, "submit", (42,)),
        (tasks.cancel_order, venue_calls, "cancel", (42,)),
        (tasks.amend_order, venue_calls, "amend", (42,)),
        (tasks.resend_order, venue_calls, "sync_from_venue", (42,)),
        (tasks.resolve_order, venue_calls, "sync_from_venue", (42,)),
        (tasks.apply_report, engine, "process", (42, {"kind": "ack"})),
    ],
    ids=lambda v: getattr(v, "name", None),
)
def test_a_dropped_database_connection_is_retried_at_once(monkeypatch, task, module, step, args):
    def gone(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(module, step, gone)
    monkeypatch.setattr(task, "retry", lambda **kw: Retry(when=kw["countdown"], exc=kw["exc"]))
    with pytest.raises(Retry) as retried:
        task.run(*args)
    assert retried.value.when == tasks.DB_RETRY_S
