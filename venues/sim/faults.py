"""Runtime-settable fault model for the simulated exchange.

Pure module: the server asks it what to do with each request and carries it out.

Fault kinds (rates are probabilities per request in scope, evaluated with one seeded
uniform draw, in this order):

``reject_rate``
    new orders only: a definite venue rejection (``reject_code`` -2010 or -1013, HTTP 400).
``error_rate`` / ``error_after_rate``
    HTTP ``error_status`` (503 by default) with a Binance-like body, before the request is
    executed, or after it was executed (the order exists although the client saw a 5xx).
``timeout_rate`` / ``timeout_after_rate``
    the answer is held back for ``timeout_ms`` (set it longer than the client timeout).
    "before": the request is not executed and the late answer is a 503 -1007;
    "after": the request is executed and the real answer is sent late.
``drop_rate`` / ``drop_after_rate``
    the connection is closed without an answer, before or after executing.

Plus latency for every ``/api`` request (``latency_ms`` + jitter, ``jitter`` is
"uniform" on [0, jitter_ms] or "exponential" with mean jitter_ms), a 429 storm
(``rate_limit_storm_s``: every ``/api`` request gets 429 -1003 with ``Retry-After``
until it ends) and a 418 ban (``ban_s``). ``scope`` says which requests random faults
apply to: "orders" (POST/DELETE order, DELETE openOrders), "signed" (every signed
endpoint) or "all" (every ``/api`` endpoint).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

SCOPES = ("orders", "signed", "all")
JITTERS = ("uniform", "exponential")

DEFAULT_REJECT_MSGS = {
    -2010: "New order rejected.",
    -1013: "Filter failure: PERCENT_PRICE_BY_SIDE",
}


@dataclass
class FaultConfig:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    jitter: str = "uniform"
    scope: str = "orders"
    reject_rate: float = 0.0
    reject_code: int = -2010
    reject_msg: str = ""
    error_rate: float = 0.0
    error_after_rate: float = 0.0
    error_status: int = 503
    error_body: str = "text"  # "text" (plain "Service Unavailable.") or "json" (-1001 body)
    timeout_rate: float = 0.0
    timeout_after_rate: float = 0.0
    timeout_ms: int = 15_000
    drop_rate: float = 0.0
    drop_after_rate: float = 0.0
    rate_limit_until_ms: int = 0
    ban_until_ms: int = 0
    seed: int = 0


@dataclass(frozen=True)
class Decision:
    action: str = "none"  # none | reject | error | timeout | drop
    after_execute: bool = False

    @property
    def label(self) -> str:
        if self.action == "none":
            return "none"
        if self.action == "reject":
            return "fault-reject"
        name = {"error": "5xx"}.get(self.action, self.action)
        return f"fault-{name}-{'after-execute' if self.after_execute else 'before'}"


NO_FAULT = Decision()

_RATE_FIELDS = (
    "reject_rate",
    "error_rate",
    "error_after_rate",
    "timeout_rate",
    "timeout_after_rate",
    "drop_rate",
    "drop_after_rate",
)


class FaultInjector:
    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self.rng = random.Random(self.config.seed)

    # ------------------------------------------------------------------ config

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        d = asdict(self.config)
        d["rate_limit_storm_remaining_s"] = max(
            0.0, (self.config.rate_limit_until_ms - now_ms) / 1000
        )
        d["ban_remaining_s"] = max(0.0, (self.config.ban_until_ms - now_ms) / 1000)
        return d

    def reset(self) -> None:
        self.config = FaultConfig()
        self.rng = random.Random(self.config.seed)

    def update(self, changes: dict[str, Any], now_ms: int) -> None:
        """Apply a partial update. Raises ValueError on unknown keys or bad values.

        Extra keys: ``rate_limit_storm_s`` / ``ban_s`` (seconds from now, 0 ends it) and
        ``reset`` (true: back to defaults before applying the rest).
        """
        if not isinstance(changes, dict):
            raise ValueError("body must be a JSON object")
        changes = dict(changes)
        if changes.pop("reset", False):
            self.reset()
        cfg = self.config
        new = asdict(cfg)
        types = {f.name: f.type for f in fields(FaultConfig)}
        for key, value in changes.items():
            if key == "rate_limit_storm_s":
                new["rate_limit_until_ms"] = now_ms + int(float(_num(key, value)) * 1000)
                continue
            if key == "ban_s":
                new["ban_until_ms"] = now_ms + int(float(_num(key, value)) * 1000)
                continue
            if key not in types:
                raise ValueError(f"unknown fault setting {key!r}")
            kind = types[key]
            if kind in ("float", float):
                new[key] = float(_num(key, value))
            elif kind in ("int", int):
                new[key] = int(_num(key, value))
            else:
                if not isinstance(value, str):
                    raise ValueError(f"{key} must be a string")
                new[key] = value
        for key in _RATE_FIELDS:
            if not 0.0 <= new[key] <= 1.0:
                raise ValueError(f"{key} must be within [0, 1]")
        if sum(new[k] for k in _RATE_FIELDS) > 1.0 + 1e-9:
            raise ValueError("the fault rates must add up to at most 1")
        if new["scope"] not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        if new["jitter"] not in JITTERS:
            raise ValueError(f"jitter must be one of {JITTERS}")
        if new["reject_code"] not in DEFAULT_REJECT_MSGS:
            raise ValueError("reject_code must be -2010 or -1013")
        if new["error_body"] not in ("json", "text"):
            raise ValueError("error_body must be 'json' or 'text'")
        if not 500 <= new["error_status"] <= 599:
            raise ValueError("error_status must be a 5xx status")
        if new["latency_ms"] < 0 or new["jitter_ms"] < 0 or new["timeout_ms"] < 0:
            raise ValueError("latency_ms, jitter_ms and timeout_ms must be >= 0")
        reseed = new["seed"] != cfg.seed
        self.config = FaultConfig(**new)
        if reseed:
            self.rng = random.Random(self.config.seed)

    # ------------------------------------------------------------------ decisions

    def latency_s(self) -> float:
        cfg = self.config
        extra = 0.0
        if cfg.jitter_ms > 0:
            if cfg.jitter == "exponential":
                extra = self.rng.expovariate(1.0 / cfg.jitter_ms)
            else:
                extra = self.rng.uniform(0.0, cfg.jitter_ms)
        return max(0.0, cfg.latency_ms + extra) / 1000.0

    def banned(self, now_ms: int) -> float:
        """Seconds of 418 ban left (0 when not banned)."""
        return max(0.0, (self.config.ban_until_ms - now_ms) / 1000.0)

    def storming(self, now_ms: int) -> float:
        """Seconds of 429 storm left (0 when none)."""
        return max(0.0, (self.config.rate_limit_until_ms - now_ms) / 1000.0)

    def in_scope(self, is_order: bool, is_signed: bool) -> bool:
        scope = self.config.scope
        if scope == "all":
            return True
        if scope == "signed":
            return is_signed
        return is_order

    def decide(self, *, is_new_order: bool, is_order: bool, is_signed: bool) -> Decision:
        cfg = self.config
        if not self.in_scope(is_order, is_signed):
            return NO_FAULT
        total = sum(getattr(cfg, k) for k in _RATE_FIELDS)
        if total <= 0:
            return NO_FAULT
        u = self.rng.random()
        acc = 0.0
        table = (
            ("reject_rate", Decision("reject")),
            ("error_rate", Decision("error")),
            ("error_after_rate", Decision("error", True)),
            ("timeout_rate", Decision("timeout")),
            ("timeout_after_rate", Decision("timeout", True)),
            ("drop_rate", Decision("drop")),
            ("drop_after_rate", Decision("drop", True)),
        )
        for key, decision in table:
            acc += getattr(cfg, key)
            if u < acc:
                if decision.action == "reject" and not is_new_order:
                    return NO_FAULT
                return decision
        return NO_FAULT

    def reject_message(self) -> tuple[int, str]:
        code = self.config.reject_code
        return code, self.config.reject_msg or DEFAULT_REJECT_MSGS[code]


def _num(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be a number")
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"{key} must be a number") from exc
