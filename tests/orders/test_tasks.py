"""Order tasks when the worker's database connection is gone (a restarted server)."""

from __future__ import annotations

import pytest
from celery.exceptions import Retry
from django.db import OperationalError

from orders import pipeline, tasks


@pytest.mark.parametrize(
    "task,step", [(tasks.submit_order, "submit"), (tasks.cancel_order, "cancel")]
)
def test_a_dropped_database_connection_is_retried_at_once(monkeypatch, task, step):
    def gone(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(pipeline, step, gone)
    monkeypatch.setattr(task, "retry", lambda **kw: Retry(when=kw["countdown"], exc=kw["exc"]))
    with pytest.raises(Retry) as retried:
        task.run(42)
    assert retried.value.when == tasks.DB_RETRY_S
