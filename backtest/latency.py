"""Seeded latency and fault draws for one simulated venue (pure, deterministic).

Each venue has its own random streams, seeded from the run's seed and the venue's
name (``zlib.crc32``, not ``hash``: that one changes from process to process), one per
purpose, so that adding a strategy order does not shift the feed's latencies.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass

from backtest.config import Faults, LatencyModel

NS_PER_MS = 1_000_000


def stream(seed: int, *names: str) -> random.Random:
    key = "/".join((str(seed), *names)).encode()
    return random.Random(zlib.crc32(key) ^ (seed << 32))


class LatencySampler:
    """Draws of one :class:`LatencyModel`, in nanoseconds."""

    __slots__ = ("constant_ns", "model", "rng")

    def __init__(self, model: LatencyModel, rng: random.Random) -> None:
        self.model, self.rng = model, rng
        # the common cases (zero, or a constant without spikes) draw nothing
        self.constant_ns: int | None = (
            int(model.ms * NS_PER_MS)
            if model.dist == "constant" and model.spike_prob == 0
            else None
        )

    def sample_ns(self, vol_bp: float = 0.0) -> int:
        if self.constant_ns is not None:
            return self.constant_ns
        m, rng = self.model, self.rng
        if m.dist == "normal":
            ms = max(0.0, rng.gauss(m.ms, m.sigma))
        elif m.dist == "lognormal":
            ms = m.ms * math.exp(rng.gauss(0.0, m.sigma)) if m.ms > 0 else 0.0
        else:
            ms = m.ms
        if m.spike_prob:
            scale = 1.0 + vol_bp / m.vol_ref_bp if m.vol_ref_bp > 0 else 1.0
            if rng.random() < min(1.0, m.spike_prob * scale):
                ms += m.spike_ms * scale * (0.5 + rng.random())
        return int(ms * NS_PER_MS)


# What a venue does with one request.
OK, REJECT, ERROR_5XX, TIMEOUT, RATE_LIMITED, OUTAGE = (
    "ok",
    "reject",
    "5xx",
    "timeout",
    "429",
    "outage",
)


@dataclass(frozen=True, slots=True)
class Draw:
    outcome: str
    executed: bool  # for 5xx/timeout: did the venue act on it before the answer was lost
    reason: str = ""


REJECT_REASONS = (
    "-2010: Account has insufficient balance for requested action.",
    "-1013: Filter failure: PRICE_FILTER",
    "-2010: Order would trigger immediately.",
)


class FaultSampler:
    """Per request: ok, a definite reject, an answer lost (5xx, timeout), a 429, or the
    venue in an outage window."""

    __slots__ = ("faults", "outages_ns", "rng", "start_ns")

    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self.faults, self.rng = faults, rng
        self.start_ns: int | None = None
        self.outages_ns: tuple[tuple[int, int], ...] = ()

    def set_start(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.outages_ns = tuple(
            (start_ns + int(a * 1e9), start_ns + int(b * 1e9)) for a, b in self.faults.outages
        )

    def in_outage(self, now_ns: int) -> bool:
        for start, end in self.outages_ns:
            if start <= now_ns < end:
                return True
        return False

    def draw(self, now_ns: int, *, can_reject: bool = True) -> Draw:
        f = self.faults
        if self.outages_ns and self.in_outage(now_ns):
            return Draw(OUTAGE, executed=False, reason="venue unreachable (outage)")
        if not (f.reject_rate or f.error_5xx_rate or f.timeout_rate or f.rate_limit_rate):
            return Draw(OK, executed=True)
        rng = self.rng
        x = rng.random()
        if x < f.rate_limit_rate:
            return Draw(RATE_LIMITED, executed=False, reason="429: Too many requests")
        x -= f.rate_limit_rate
        if x < f.error_5xx_rate:
            return Draw(
                ERROR_5XX,
                executed=rng.random() < f.executed_if_in_doubt,
                reason="503: Service Unavailable",
            )
        x -= f.error_5xx_rate
        if x < f.timeout_rate:
            return Draw(TIMEOUT, executed=rng.random() < f.executed_if_in_doubt, reason="timeout")
        x -= f.timeout_rate
        if can_reject and x < f.reject_rate:
            return Draw(
                REJECT, executed=False, reason=REJECT_REASONS[rng.randrange(len(REJECT_REASONS))]
            )
        return Draw(OK, executed=True)
