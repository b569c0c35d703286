"""One Redis client per process for the OMS's own keys (limits, breakers, marks)."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
    )


@functools.cache
def blocking_client() -> redis.Redis:
    """For blocking reads (BRPOP) of up to ``BLOCKING_TIMEOUT_S``: the FIX venue adapter."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=BLOCKING_TIMEOUT_S,
        socket_connect_timeout=2,
        health_check_interval=30,
    )


BLOCKING_TIMEOUT_S = 30
