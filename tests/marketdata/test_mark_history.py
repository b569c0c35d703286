"""The mark history (marketdata/store.py): the consolidated mid in force at a recent
moment, as transaction-cost analysis reads it, against the test run's real Redis."""

from __future__ import annotations

import time
from decimal import Decimal as D

import pytest

from marketdata.store import (
    MARK_HISTORY_S,
    mark_history_key,
    mark_key,
    marks_at,
    read_mark,
    record_mark,
)

SYMBOL = "HIST/USDT"


@pytest.fixture
def redis():
    from omsweb.redis_client import client

    r = client()
    r.delete(mark_history_key(SYMBOL), mark_key(SYMBOL))
    yield r
    r.delete(mark_history_key(SYMBOL), mark_key(SYMBOL))


def test_marks_at_then_last_mid_at_or_before_each_moment_unless_too_old(redis):
    # Arrange: mids at t, t+1 and t+10
    t = time.time() - 60
    for offset, mid in ((0, "100"), (1, "101"), (10, "102")):
        record_mark(redis, SYMBOL, D(mid), t + offset)
    # Act
    found = marks_at(redis, SYMBOL, [t - 1, t, t + 0.5, t + 1, t + 5.9, t + 6.5, t + 11])
    # Assert: before the first none; then the one in force; more than 5 s old: none
    assert found == [None, D("100"), D("100"), D("101"), D("101"), None, D("102")]
    assert read_mark(redis, SYMBOL) == D("102")  # the mark itself: the latest


def test_record_mark_then_history_older_than_its_span_trimmed(redis):
    now = time.time()
    record_mark(redis, SYMBOL, D("100"), now - MARK_HISTORY_S - 30)
    record_mark(redis, SYMBOL, D("101"), now)
    assert redis.zcard(mark_history_key(SYMBOL)) == 1
    assert marks_at(redis, SYMBOL, [now - MARK_HISTORY_S - 29]) == [None]
    assert marks_at(redis, SYMBOL, []) == []
