"""The per-venue circuit breaker (venues/breaker.py) against the real Redis of the test
run (``REDIS_URL``, a database of the tests' own). Time is the breaker's clock, set by
the test; every test uses a venue name of its own."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from venues.breaker import CLOSED, HALF_OPEN, OPEN, UNKNOWN, BreakerConfig, CircuitBreaker

CONFIG = BreakerConfig(
    threshold=5, window_s=10.0, failure_ratio=0.5, streak=10, cooldown_s=5.0, probe_timeout_s=3.0
)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(redis_client, clock):
    """``make()``: a breaker of a fresh venue; ``make(venue)``: another process's view of
    the same venue (its own object, the same Redis hash)."""
    created: list[CircuitBreaker] = []

    def build(venue: str | None = None) -> CircuitBreaker:
        breaker = CircuitBreaker(redis_client, venue or f"test-{uuid.uuid4().hex[:8]}", CONFIG)
        breaker._now = clock  # type: ignore[method-assign]
        created.append(breaker)
        return breaker

    yield build
    for breaker in created:
        breaker.reset()


def fail(breaker: CircuitBreaker, n: int) -> str:
    state = ""
    for _ in range(n):
        state = breaker.record_failure()
    return state


def succeed(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        breaker.record_success()


def test_closed_allows_and_opens_at_threshold_failures_then_fails_fast(make):
    breaker = make()
    assert breaker.allow() and breaker.state()["state"] == CLOSED
    assert fail(breaker, 4) == CLOSED
    assert breaker.allow()
    assert fail(breaker, 1) == OPEN
    assert not breaker.allow()
    state = breaker.state()
    assert state["state"] == OPEN and state["failures"] == 5
    assert state["open_until"] == pytest.approx(breaker._now() / 1000 + 5.0)


def test_failures_among_many_successes_keep_it_closed(make):
    """A busy venue answering the odd 5xx is up: 5 failures among 95 successes."""
    breaker = make()
    for _ in range(5):
        succeed(breaker, 19)
        assert breaker.record_failure() == CLOSED
    assert breaker.allow()


def test_failures_reaching_the_ratio_open_it(make):
    breaker = make()
    succeed(breaker, 8)
    assert fail(breaker, 7) == CLOSED  # 7 of 15: under half, and never 10 in a row
    succeed(breaker, 1)
    assert fail(breaker, 2) == OPEN  # 9 of 18


def test_a_streak_of_failures_opens_it_after_a_busy_healthy_window(make):
    breaker = make()
    succeed(breaker, 200)
    assert fail(breaker, 9) == CLOSED
    assert fail(breaker, 1) == OPEN


def test_a_success_breaks_the_streak(make):
    breaker = make()
    succeed(breaker, 200)
    fail(breaker, 9)
    succeed(breaker, 1)
    assert fail(breaker, 9) == CLOSED


def test_failures_outside_the_window_are_forgotten(make, clock):
    breaker = make()
    fail(breaker, 4)
    clock.advance(10.5)
    assert breaker.record_failure() == CLOSED
    assert breaker.state()["failures"] == 1


def test_a_fresh_windows_first_failures_are_judged_with_the_last_windows_calls(make, clock):
    """30 % of calls failing, and the new window's first calls happen to fail more: the
    previous window's calls still count (weighted), so the breaker stays closed."""
    breaker = make()
    succeed(breaker, 14)
    fail(breaker, 4)
    clock.advance(10.5)
    for _ in range(5):
        assert breaker.record_failure() == CLOSED  # 5 of the new window's first 6 calls
        if breaker.state()["failures"] == 3:
            succeed(breaker, 1)


def test_the_last_window_weighs_less_as_the_new_one_fills(make, clock):
    breaker = make()
    succeed(breaker, 10)
    clock.advance(10.5)
    assert breaker.record_failure() == CLOSED  # a new window begins
    clock.advance(9.0)  # the last window now weighs 10 %
    assert fail(breaker, 4) == OPEN  # 5 failures against 5 + 10 * 0.1 calls


def test_a_window_older_than_two_windows_is_forgotten(make, clock):
    breaker = make()
    succeed(breaker, 100)
    clock.advance(20.5)
    assert fail(breaker, 5) == OPEN


def test_cooldown_then_one_probe_whose_success_closes_it(make, clock):
    breaker, other = make(), None
    fail(breaker, 5)
    other = make(breaker.venue)  # another worker
    clock.advance(4.9)
    assert not breaker.allow() and not other.allow()
    clock.advance(0.2)
    assert breaker.state()["state"] == HALF_OPEN
    assert other.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    assert other.record_success() == HALF_OPEN  # the caller learns it just came back
    assert breaker.allow() and breaker.state()["state"] == CLOSED
    assert breaker.record_success() == CLOSED


def test_a_failed_probe_opens_it_again_for_a_full_cooldown(make, clock):
    breaker = make()
    fail(breaker, 5)
    clock.advance(5.1)
    assert breaker.allow()
    assert breaker.record_failure() == OPEN
    clock.advance(4.9)
    assert not breaker.allow()
    clock.advance(0.2)
    assert breaker.allow()


def test_a_probe_that_never_reports_back_frees_the_slot(make, clock):
    breaker = make()
    fail(breaker, 5)
    clock.advance(5.1)
    assert breaker.allow()  # probe taken, its worker dies
    clock.advance(2.9)
    assert not breaker.allow()
    clock.advance(0.2)
    assert breaker.allow()


def test_a_ban_opens_it_at_once_until_the_ban_ends(make, clock):
    breaker = make()
    succeed(breaker, 50)
    assert breaker.record_failure(open_for_s=30) == OPEN
    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.2)
    assert breaker.allow()


def test_reset_closes_it(make):
    breaker = make()
    fail(breaker, 5)
    breaker.reset()
    assert breaker.allow() and breaker.state()["state"] == CLOSED


def test_state_with_redis_down_is_unknown_not_an_error():
    from omsweb.stack import free_port

    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    assert CircuitBreaker(down, "nowhere").state()["state"] == UNKNOWN


def test_open_venues_reads_every_breaker_in_one_round_trip(redis_client, make):
    from venues.breaker import is_open, open_venues

    # real clock here: open_venues compares with the time now
    tripped, cooled, healthy = make(), make(), make()
    for breaker in (tripped, cooled, healthy):
        breaker._now = CircuitBreaker._now  # type: ignore[method-assign]
    tripped.record_failure(open_for_s=60.0)
    cooled.record_failure(open_for_s=0.0)  # cool-down over: half-open, takes a probe
    names = [tripped.venue, cooled.venue, healthy.venue, "never-seen"]
    assert open_venues(redis_client, names) == {tripped.venue}
    assert [is_open(redis_client, n) for n in names] == [True, False, False, False]
    assert cooled.state()["state"] == HALF_OPEN and tripped.state()["state"] == OPEN
    down = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    assert open_venues(down, names) == set()  # Redis down: not open (the worker decides)
