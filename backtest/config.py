"""What a backtest run is configured with: venues (fees, transforms, latency, faults),
risk limits, the queue model and the router. Frozen dataclasses with documented
defaults, loaded from a TOML or JSON file (``oms backtest --config FILE``).

A file looks like this (every key optional)::

    seed = 7
    queue_model = "conservative"      # or "probabilistic"
    router = "sor"                    # sor | best | fixed:<venue>
    account = "BACKTEST"
    start_balance = "100000"          # quote currency, for the equity curve

    [risk.limits]                     # any LimitKind; the others keep DEFAULT_LIMITS
    max_position = "5"
    max_daily_loss = "2000"

    [[kill_switch]]                   # an operator's kill switch at a set time
    at_s = 120                        # seconds from the recording's start
    scope = "account"                 # or a symbol
    state = "HALTED"                  # ACTIVE (release), REDUCING or HALTED
    reason = "drill"

    [[venue]]
    name = "sim-a"
    source = "binance-spot"           # which recording's venue it replays (default: the only one)
    price_offset_bp = 0.0             # every price x (1 + bp / 10,000)
    depth_scale = 1.0                 # every quantity x scale
    maker_fee = "0.001"
    taker_fee = "0.001"
    tick_size = "0.01"
    lot_size = "0.00001"
    min_notional = "5"
    latency.feed = { dist = "lognormal", ms = 4, sigma = 0.5 }
    latency.order = { dist = "constant", ms = 10 }
    latency.response = { dist = "normal", ms = 10, sigma = 2 }
    faults = { reject_rate = 0.01, error_5xx_rate = 0.01, timeout_rate = 0.005,
               executed_if_in_doubt = 0.5, rate_limit_rate = 0.01, retry_after_s = 1.0,
               timeout_s = 10.0, outages = [[60, 75]] }

Bad values stop the run with a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from risk.checks import LimitKind

# The limits of a fresh install (risk/defaults.py's DEFAULT_LIMITS, which cannot be
# imported here: that module reaches the database). tests/backtest checks they agree.
DEFAULT_LIMITS: dict[str, str] = {
    LimitKind.MAX_ORDER_QUANTITY: "100",
    LimitKind.MAX_ORDER_NOTIONAL: "2000000",
    LimitKind.MAX_POSITION: "200",
    LimitKind.MAX_GROSS_EXPOSURE: "10000000",
    LimitKind.MAX_OPEN_ORDERS: "200",
    LimitKind.MAX_ORDERS_PER_SECOND: "50",
    LimitKind.MAX_DUPLICATE_ORDERS: "3",
    LimitKind.DUPLICATE_WINDOW_S: "2",
    LimitKind.PRICE_COLLAR_PCT: "15",
    LimitKind.MAX_REFERENCE_AGE_S: "10",
    LimitKind.MAX_DAILY_LOSS: "250000",
}
DEFAULT_BREACH_ACTIONS: dict[str, str] = {
    LimitKind.MAX_POSITION: "REDUCING",
    LimitKind.MAX_DAILY_LOSS: "HALTED",
}

QUEUE_MODELS = ("conservative", "probabilistic")
DISTRIBUTIONS = ("constant", "normal", "lognormal")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """One latency, in milliseconds.

    ``constant``: always ``ms``; ``normal``: mean ``ms``, standard deviation ``sigma`` ms
    (never below 0); ``lognormal``: median ``ms``, shape ``sigma``. On top, a spike of
    ``spike_ms`` with probability ``spike_prob``; both grow with volatility: multiplied by
    ``1 + vol_bp / vol_ref_bp`` where ``vol_bp`` is the mid's move over the last second.
    """

    dist: str = "constant"
    ms: float = 0.0
    sigma: float = 0.0
    spike_prob: float = 0.0
    spike_ms: float = 0.0
    vol_ref_bp: float = 10.0

    @property
    def is_zero(self) -> bool:
        return self.dist == "constant" and self.ms == 0 and self.spike_prob == 0


def _default_feed() -> LatencyModel:
    return LatencyModel("lognormal", ms=4.0, sigma=0.5, spike_prob=0.001, spike_ms=50.0)


def _default_order() -> LatencyModel:
    return LatencyModel("lognormal", ms=12.0, sigma=0.4, spike_prob=0.002, spike_ms=150.0)


@dataclass(frozen=True, slots=True)
class Latency:
    """Feed (the venue's market data reaches the strategy), order (the OMS's request
    reaches the venue) and response (the venue's answer or execution report reaches
    the OMS). The default is a realistic cloud-to-exchange model, not zero."""

    feed: LatencyModel = field(default_factory=_default_feed)
    order: LatencyModel = field(default_factory=_default_order)
    response: LatencyModel = field(default_factory=_default_order)


@dataclass(frozen=True, slots=True)
class Faults:
    """What goes wrong at a venue, per request (seeded, deterministic).

    ``error_5xx_rate`` and ``timeout_rate``: the answer is lost; the request was
    executed with probability ``executed_if_in_doubt`` (the OMS's in-doubt resolution
    finds out). A 5xx comes back after the response latency, a timeout after
    ``timeout_s``. ``rate_limit_rate``: a 429 with ``retry_after_s``. ``outages``:
    ``[start_s, end_s]`` windows from the recording's start when the venue neither
    answers nor publishes market data.
    """

    reject_rate: float = 0.0
    error_5xx_rate: float = 0.0
    timeout_rate: float = 0.0
    executed_if_in_doubt: float = 0.5
    rate_limit_rate: float = 0.0
    retry_after_s: float = 1.0
    timeout_s: float = 10.0
    outages: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class VenueConfig:
    name: str
    source: str | None = None  # the recording venue it replays; None: the only one
    price_offset_bp: float = 0.0
    depth_scale: float = 1.0
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    tick_size: Decimal = Decimal(0)
    lot_size: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    latency: Latency = field(default_factory=Latency)
    faults: Faults = field(default_factory=Faults)


@dataclass(frozen=True, slots=True)
class RiskConfig:
    limits: Mapping[str, Decimal] = field(
        default_factory=lambda: {k: Decimal(v) for k, v in DEFAULT_LIMITS.items()}
    )
    breach_actions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_BREACH_ACTIONS))


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    venues: tuple[VenueConfig, ...] = ()  # empty: one venue per recording, default settings
    risk: RiskConfig = field(default_factory=RiskConfig)
    seed: int = 0
    queue_model: str = "conservative"
    router: str = "sor"
    account: str = "BACKTEST"
    start_balance: Decimal = Decimal(100_000)
    in_doubt_check_s: float = 2.0  # an unanswered order is asked about after this long
    resend_min_age_s: float = 8.0  # the venue never got it: sent again after this long
    resend_max_age_s: float = 120.0  # ...but never once the order is this old
    max_route_rounds: int = 3
    latency_ms: float | None = None  # --latency-ms: every venue's latencies, constant
    # operator kill-switch changes at set times: (at_s from the start, scope, state, reason);
    # scope "account" or a symbol; state ACTIVE (release), REDUCING or HALTED
    kill_switch: tuple[tuple[float, str, str, str], ...] = ()

    def with_latency_ms(self, ms: float) -> BacktestConfig:
        """Every venue's feed, order and response latency set to ``ms`` (no spikes)."""
        lat = constant_latency(ms)
        return replace(
            self, venues=tuple(replace(v, latency=lat) for v in self.venues), latency_ms=float(ms)
        )


def constant_latency(ms: float) -> Latency:
    model = LatencyModel("constant", ms=float(ms))
    return Latency(feed=model, order=model, response=model)


# ---------------------------------------------------------------------------- loading


def _dec(key: str, value: Any) -> Decimal:
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{key}: {value!r} is not a number") from None
    if not out.is_finite() or out < 0:
        raise ConfigError(f"{key}: {value!r} must be a finite number >= 0")
    return out


def _float(key: str, value: Any, *, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key}: {value!r} is not a number")
    try:
        out = float(value)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not a number") from None
    if out != out or out < 0 or (high is not None and out > high):
        bound = f" and <= {high}" if high is not None else ""
        raise ConfigError(f"{key}: {value!r} must be >= 0{bound}")
    return out


def _known(key: str, data: Iterable[str], cls: type) -> None:
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


def _table(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a table/object, got {value!r}")
    return value


def _latency_model(key: str, data: Any) -> LatencyModel:
    data = _table(key, data)
    _known(key, data, LatencyModel)
    dist = data.get("dist", "constant")
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"{key}.dist: {dist!r} is not one of {', '.join(DISTRIBUTIONS)}")
    return LatencyModel(
        dist=dist,
        **{
            name: _float(f"{key}.{name}", data[name], high=1.0 if name == "spike_prob" else None)
            for name in ("ms", "sigma", "spike_prob", "spike_ms", "vol_ref_bp")
            if name in data
        },
    )


def _latency(key: str, data: Any) -> Latency:
    data = _table(key, data)
    _known(key, data, Latency)
    base = Latency()
    return Latency(
        **{
            name: _latency_model(f"{key}.{name}", data[name])
            if name in data
            else getattr(base, name)
            for name in ("feed", "order", "response")
        }
    )


def _faults(key: str, data: Any) -> Faults:
    data = _table(key, data)
    _known(key, data, Faults)
    kw: dict[str, Any] = {}
    for name in (
        "reject_rate",
        "error_5xx_rate",
        "timeout_rate",
        "executed_if_in_doubt",
        "rate_limit_rate",
    ):
        if name in data:
            kw[name] = _float(f"{key}.{name}", data[name], high=1.0)
    for name in ("retry_after_s", "timeout_s"):
        if name in data:
            kw[name] = _float(f"{key}.{name}", data[name])
    if "outages" in data:
        windows = []
        for i, window in enumerate(data["outages"]):
            if not isinstance(window, list | tuple) or len(window) != 2:
                raise ConfigError(f"{key}.outages[{i}]: expected [start_s, end_s], got {window!r}")
            start = _float(f"{key}.outages[{i}][0]", window[0])
            end = _float(f"{key}.outages[{i}][1]", window[1])
            if end <= start:
                raise ConfigError(f"{key}.outages[{i}]: end {end} must be after start {start}")
            windows.append((start, end))
        kw["outages"] = tuple(windows)
    return Faults(**kw)


def _venue(key: str, data: Any) -> VenueConfig:
    data = _table(key, data)
    _known(key, data, VenueConfig)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key}.name: a venue needs a name")
    kw: dict[str, Any] = {"name": name}
    if "source" in data:
        kw["source"] = str(data["source"])
    if "price_offset_bp" in data:
        value = data["price_offset_bp"]
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) >= 10_000:
            raise ConfigError(
                f"{key}.price_offset_bp: {value!r} must be a number in (-10000, 10000)"
            )
        kw["price_offset_bp"] = float(value)
    if "depth_scale" in data:
        kw["depth_scale"] = _float(f"{key}.depth_scale", data["depth_scale"])
        if kw["depth_scale"] == 0:
            raise ConfigError(f"{key}.depth_scale: must be > 0")
    for name in ("maker_fee", "taker_fee", "tick_size", "lot_size", "min_notional"):
        if name in data:
            kw[name] = _dec(f"{key}.{name}", data[name])
    if "latency" in data:
        kw["latency"] = _latency(f"{key}.latency", data["latency"])
    if "faults" in data:
        kw["faults"] = _faults(f"{key}.faults", data["faults"])
    return VenueConfig(**kw)


def config_from_dict(data: Mapping[str, Any]) -> BacktestConfig:
    _known("config", {k for k in data if k not in ("venue", "risk")}, BacktestConfig)
    kw: dict[str, Any] = {}
    venues = data.get("venue", data.get("venues", []))
    if not isinstance(venues, list):
        raise ConfigError("venue: expected a list of venues ([[venue]] in TOML)")
    kw["venues"] = tuple(_venue(f"venue[{i}]", v) for i, v in enumerate(venues))
    names = [v.name for v in kw["venues"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"venue: names must be unique, got {names}")
    if "risk" in data:
        risk = _table("risk", data["risk"])
        _known(
            "risk",
            {"limits" if k == "limits" else "breach_actions" if k == "breach" else k for k in risk},
            RiskConfig,
        )
        limits = {k: Decimal(v) for k, v in DEFAULT_LIMITS.items()}
        kinds = {k.value for k in LimitKind}
        for name, value in _table("risk.limits", risk.get("limits", {})).items():
            if name not in kinds:
                raise ConfigError(
                    f"risk.limits.{name}: unknown limit; known: {', '.join(sorted(kinds))}"
                )
            limits[name] = _dec(f"risk.limits.{name}", value)
        actions = dict(DEFAULT_BREACH_ACTIONS)
        for name, value in _table(
            "risk.breach", risk.get("breach", risk.get("breach_actions", {}))
        ).items():
            if name not in DEFAULT_BREACH_ACTIONS or value not in ("REDUCING", "HALTED"):
                raise ConfigError(
                    f"risk.breach.{name}: expected max_position|max_daily_loss = REDUCING|HALTED"
                )
            actions[name] = value
        kw["risk"] = RiskConfig(limits=limits, breach_actions=actions)
    if "seed" in data:
        if isinstance(data["seed"], bool) or not isinstance(data["seed"], int):
            raise ConfigError(f"seed: {data['seed']!r} is not an integer")
        kw["seed"] = data["seed"]
    if "queue_model" in data:
        if data["queue_model"] not in QUEUE_MODELS:
            raise ConfigError(
                f"queue_model: {data['queue_model']!r} is not one of {', '.join(QUEUE_MODELS)}"
            )
        kw["queue_model"] = data["queue_model"]
    if "router" in data:
        kw["router"] = check_router(str(data["router"]))
    if "account" in data:
        kw["account"] = str(data["account"])
    if "start_balance" in data:
        kw["start_balance"] = _dec("start_balance", data["start_balance"])
    for name in ("in_doubt_check_s", "resend_min_age_s", "resend_max_age_s"):
        if name in data:
            kw[name] = _float(name, data[name])
    if "max_route_rounds" in data:
        kw["max_route_rounds"] = int(_float("max_route_rounds", data["max_route_rounds"]))
    if "kill_switch" in data:
        changes = []
        for i, row in enumerate(data["kill_switch"]):
            key = f"kill_switch[{i}]"
            row = _table(key, row)
            unknown = sorted(set(row) - {"at_s", "scope", "state", "reason"})
            if unknown:
                raise ConfigError(
                    f"{key}: unknown key(s) {', '.join(unknown)}; known: at_s, scope, state, reason"
                )
            if row.get("state") not in ("ACTIVE", "REDUCING", "HALTED"):
                raise ConfigError(
                    f"{key}.state: {row.get('state')!r} is not ACTIVE, REDUCING or HALTED"
                )
            at = _float(f"{key}.at_s", row.get("at_s", 0))
            changes.append(
                (
                    at,
                    str(row.get("scope", "account")),
                    row["state"],
                    str(row.get("reason", "operator")),
                )
            )
        kw["kill_switch"] = tuple(sorted(changes, key=lambda c: c[0]))
    return BacktestConfig(**kw)


def check_router(router: str) -> str:
    if router in ("sor", "best") or (router.startswith("fixed:") and len(router) > 6):
        return router
    raise ConfigError(f"router: {router!r} is not sor, best or fixed:<venue>")


def load_config(path: Path) -> BacktestConfig:
    """A configuration file (``.toml`` or ``.json``)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = (
            json.loads(raw)
            if path.suffix.lower() == ".json"
            else tomllib.loads(raw.decode("utf-8"))
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table/object at the top")
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
