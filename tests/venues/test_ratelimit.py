"""The cluster-wide rate limiter (venues/ratelimit.py) against the real Redis of the test
run: token buckets, the cancel lane, the venue-wide pause after a 429, used-weight
correction, and atomicity under concurrent callers. Time is set by the test; every test
uses a venue name of its own."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import redis

from venues import ratelimit
from venues.ratelimit import Pool, RateLimiter


class Clock:
    """Stands in for the ``time`` module inside venues.ratelimit."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


@pytest.fixture
def make(redis_client):
    venues: list[str] = []

    def build(pools: tuple[Pool, ...], venue: str | None = None) -> RateLimiter:
        name = venue or f"test-{uuid.uuid4().hex[:8]}"
        venues.append(name)
        return RateLimiter(redis_client, name, pools)

    yield build
    for name in venues:
        for key in redis_client.scan_iter(f"oms:rl:{name}:*", count=10_000):
            redis_client.delete(key)


WEIGHT_100_PER_10S = (Pool("weight", 100, 10.0),)  # 10 tokens a second, 10 reserved


def test_tokens_are_taken_until_only_the_cancel_reserve_is_left(make, clock):
    limiter = make(WEIGHT_100_PER_10S)
    taken = 0
    while limiter.try_acquire("fetch_order") == 0.0:  # weight 4
        taken += 1
    assert taken == 22  # 22 * 4 = 88 <= 90 (100 minus the 10 reserved for cancels)
    wait = limiter.try_acquire("fetch_order")
    assert wait == pytest.approx((4 - 2) / 10, abs=0.01)  # 2 spare tokens, 10 a second


def test_cancels_may_use_the_reserve(make, clock):
    limiter = make(WEIGHT_100_PER_10S)
    while limiter.try_acquire("submit_order") == 0.0:
        pass
    cancels = 0
    while limiter.try_acquire("cancel_order", cancel=True) == 0.0:
        cancels += 1
    assert cancels == 10


def test_tokens_refill_with_time(make, clock):
    limiter = make(WEIGHT_100_PER_10S)
    while limiter.try_acquire("submit_order") == 0.0:
        pass
    clock.advance(0.5)  # 5 tokens back
    assert sum(limiter.try_acquire("submit_order") == 0.0 for _ in range(10)) == 5


def test_every_pool_of_the_call_is_charged(make, clock):
    limiter = make((Pool("weight", 1000, 60.0), Pool("orders", 10, 10.0)))
    accepted = sum(limiter.try_acquire("submit_order") == 0.0 for _ in range(20))
    assert accepted == 9  # the orders pool (10, one reserved) is the binding one
    assert limiter.usage()["orders"] == pytest.approx(0.9)
    assert limiter.try_acquire("fetch_order") == 0.0  # weight only: still free


def test_a_429_pauses_the_venue_for_every_worker(make, clock):
    worker_a = make(WEIGHT_100_PER_10S)
    worker_b = make(WEIGHT_100_PER_10S, venue=worker_a.venue)
    worker_a.pause(3.0)
    assert worker_b.paused_for() == pytest.approx(3.0)
    assert worker_b.try_acquire("submit_order") == pytest.approx(3.0)
    assert worker_b.try_acquire("cancel_order", cancel=True) == pytest.approx(3.0)
    clock.advance(3.01)
    assert worker_b.paused_for() == 0.0
    assert worker_b.try_acquire("submit_order") == 0.0


def test_acquire_waits_a_little_then_says_how_long_to_wait(make, clock):
    limiter = make(WEIGHT_100_PER_10S)
    while limiter.try_acquire("submit_order") == 0.0:
        pass
    assert limiter.acquire("submit_order", max_wait=2.0) == 0.0  # one token: 0.1 s
    assert clock.slept and sum(clock.slept) <= 2.0
    limiter.pause(5.0)
    assert limiter.acquire("submit_order", max_wait=2.0) == pytest.approx(5.0)


def test_the_venues_used_weight_corrects_our_count_down_only(make, clock):
    limiter = make(WEIGHT_100_PER_10S)
    limiter.try_acquire("submit_order")
    limiter.observe_used(60)  # another client used the same key / IP
    assert limiter.usage()["weight"] == pytest.approx(0.6)
    limiter.observe_used(5)  # the venue counts less than we do: keep ours
    assert limiter.usage()["weight"] == pytest.approx(0.6)
    limiter.observe_used(None)
    assert limiter.usage()["weight"] == pytest.approx(0.6)


def test_concurrent_callers_never_take_more_than_the_pool(make, redis_client):
    """Eight threads (as eight workers would) racing for a pool that does not refill
    during the test: exactly the pool's capacity minus the reserve is granted."""
    limiter = make((Pool("orders", 50, 1_000_000.0),))
    granted = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        mine = RateLimiter(redis_client, limiter.venue, (Pool("orders", 50, 1_000_000.0),))
        start.wait()
        count = sum(mine.try_acquire("submit_order") == 0.0 for _ in range(20))
        with lock:
            granted.append(count)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 45
