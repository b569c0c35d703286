"""Risk benchmarks for ``make bench`` and the kill-switch drill the system test runs.

* ``bench_risk_eval(n)``: every pre-trade check evaluated in process on a realistic
  snapshot (``risk_eval_p50_us``, ``risk_eval_p99_us``; target p50 <= 5 us, p99 <= 20 us).
* ``bench_killswitch(stack)``: the drill below against a running stack
  (``omsweb.stack.Stack``): ``killswitch_500_s`` (target <= 2 s).

The drill: a simulated venue of its own (``sim-drill``, Binance's MAX_NUM_ORDERS filter
raised so one venue can hold 500 of our orders), an account ``DRILL`` with a trader and
a risk officer, 500 working orders at the venue, then the risk officer engages HALTED on
the venue through the API while a prober keeps submitting. It measures the time from
the engagement request until the venue lists none of our orders, and checks that every
order sent after the engagement was denied and that nothing keeps working anywhere.

Command line (used by the drill; both run against the stack's environment)::

    python -m bench.risk sim --name sim-drill --port P [simulator options]
    python -m bench.risk prepare SIM_URL        # prints {"risk": token, "trader": token}
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from orders.domain import lifecycle as lc

DRILL_ACCOUNT = "DRILL"
DRILL_VENUE = "sim-drill"
DRILL_ORDERS = 500
DRILL_MAX_OPEN_PER_SYMBOL = 1000
# symbol -> (quantity, first price, price step): resting ~10% under the simulator's mid
DRILL_BOOKS = {
    "BTC/USDT": ("0.001", Decimal("54000.00"), Decimal("0.01")),
    "ETH/USDT": ("0.01", Decimal("2700.00"), Decimal("0.01")),
}
LIVE = ",".join(lc.values(lc.OPEN_STATUSES))  # the API's status filter


# --- pure evaluation -------------------------------------------------------------------


def realistic_snapshot() -> Any:
    """A BTC/USDT limit buy for an account with positions, working orders and a fresh
    reference price: every check runs its full comparison, none fails."""
    from risk.checks import Limits, Snapshot, StateRow

    d = Decimal
    limits = Limits(
        max_order_quantity=d("100"),
        max_order_notional=d("2000000"),
        max_position=d("200"),
        max_gross_exposure=d("10000000"),
        max_open_orders=d("200"),
        max_orders_per_second=d("50"),
        max_duplicate_orders=d("3"),
        duplicate_window_s=d("2"),
        price_collar_pct=d("15"),
        max_reference_age_s=d("10"),
        max_daily_loss=d("250000"),
    )
    return Snapshot.build(
        symbol="BTC/USDT",
        side_sign=1,
        is_market=False,
        quantity=d("0.015"),
        price=d("59990.01"),
        tick_size=d("0.01"),
        lot_size=d("0.00001"),
        min_notional=d("5"),
        limits=limits,
        limit_scope="DEMO BTC/USDT",
        trading_state=StateRow("ACTIVE", "global"),
        reference_price=d("60000.005"),
        reference_age_s=0.42,
        position=d("0.734"),
        working_same_side=d("0.031"),
        gross_exposure=d("81234.56789"),
        open_orders=12,
        orders_last_second=2,
        duplicates_in_window=0,
        own_opposite_best=d("60120.5"),
        daily_pnl=d("-1234.5678"),
    )


def bench_risk_eval(n: int = 20000) -> dict[str, float]:
    """Every pre-trade check, in process, on a realistic snapshot: p50/p99 in us."""
    from risk.checks import evaluate

    snapshot = realistic_snapshot()
    assert evaluate(snapshot) == [], "the benchmark snapshot must pass every check"
    clock = time.perf_counter_ns
    for _ in range(min(2000, n)):
        evaluate(snapshot)
    samples = []
    for _ in range(n):
        t0 = clock()
        evaluate(snapshot)
        samples.append(clock() - t0)
    samples.sort()
    return {
        "risk_eval_p50_us": round(statistics.median(samples) / 1000, 2),
        "risk_eval_p99_us": round(samples[int(len(samples) * 0.99) - 1] / 1000, 2),
        "risk_eval_n": n,
    }


# --- the kill-switch drill -------------------------------------------------------------


@dataclass
class DrillResult:
    orders: int = 0
    open_at_venue_before: int = 0
    killswitch_s: float = float("nan")  # engagement request -> none of ours open at venue
    engage_request_s: float = float("nan")  # the engagement's HTTP round trip
    oms_settled_s: float = float("nan")  # -> none working in the OMS
    engaged_at: str = ""
    probes_after: list[int] = field(default_factory=list)  # HTTP codes after engagement
    probes_before_accepted: list[str] = field(default_factory=list)  # client ids (201)
    probe_reasons: list[str] = field(default_factory=list)
    accepted_after_engagement: list[str] = field(default_factory=list)  # OMS, by created_at
    new_at_venue_after_cancel_all: list[str] = field(default_factory=list)
    open_at_venue_after: int = -1
    working_in_oms_after: int = -1
    cancel_all_requests: int = 0
    cancel_requests: int = 0
    sweep: dict[str, Any] = field(default_factory=dict)


def _run(argv: list[str], env: dict[str, str]) -> str:
    from omsweb.stack import ROOT

    out = subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def start_drill_sim(stack: Any) -> str:
    """The drill's simulated venue, started once per stack (stopped with the stack)."""
    from omsweb.stack import free_port, wait_http

    url = getattr(stack, "_drill_sim_url", None)
    proc = stack.procs.get(DRILL_VENUE)
    if url and proc is not None and proc.alive():
        return url
    from venues.sim.server import DEFAULT_API_KEY, DEFAULT_API_SECRET

    port = free_port()
    argv = [
        sys.executable, "-m", "bench.risk", "sim", "--name", DRILL_VENUE, "--port", str(port),
        # the simulator's default key: the drill venue names no credential variables
        "--api-key", DEFAULT_API_KEY, "--api-secret", DEFAULT_API_SECRET,
        "--paused", "--weight-limit", "10000000", "--order-limit-10s", "10000000",
    ]  # fmt: skip
    stack.start(DRILL_VENUE, argv)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/sim/health")
    stack._drill_sim_url = url
    return url


def _sim(url: str, path: str, **params: Any) -> Any:
    import requests

    r = requests.get(url + path, params=params, timeout=10)
    r.raise_for_status()
    return r.json()


def _open_at(sim_url: str) -> int:
    state = _sim(sim_url, "/sim/state", depth=1)
    return len(state["open_orders"].get("default", []))


def _count(api: Any, **params: Any) -> int:
    r = api.get("/api/v1/orders/", params={"limit": 1, **params})
    r.raise_for_status()
    return int(r.json()["count"])


def _wait(predicate: Any, timeout: float, interval: float = 0.05) -> float:
    """Poll until true; the seconds it took (NaN when it never became true)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if predicate():
            return time.perf_counter() - start
        time.sleep(interval)
    return float("nan")


def _drill_orders(run: str, n: int) -> list[dict[str, Any]]:
    books = list(DRILL_BOOKS.items())
    orders = []
    for i in range(n):
        symbol, (qty, first, step) = books[i % len(books)]
        price = first - step * (i // len(books))
        orders.append(
            {
                "client_order_id": f"dr-{run}-{i}",
                "account": DRILL_ACCOUNT,
                "symbol": symbol,
                "side": "buy",
                "type": "limit",
                "quantity": qty,
                "price": str(price),
                "venue": DRILL_VENUE,
            }
        )
    return orders


def _submit_all(web: str, token: str, orders: list[dict[str, Any]], clients: int = 4) -> list[str]:
    from omsweb.stack import Api

    errors: list[str] = []

    def client(k: int) -> None:
        api = Api(web, token)
        for body in orders[k::clients]:
            r = api.post("/api/v1/orders/", body)
            if r.status_code != 201:
                errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def run_killswitch_drill(stack: Any, n: int = DRILL_ORDERS) -> DrillResult:
    """Put ``n`` working orders at the drill venue, engage HALTED on it, measure."""
    from omsweb.stack import Api

    result = DrillResult()
    sim_url = start_drill_sim(stack)
    tokens = json.loads(_run([sys.executable, "-m", "bench.risk", "prepare", sim_url], stack.env))
    risk, trader = Api(stack.web, tokens["risk"]), Api(stack.web, tokens["trader"])
    run = uuid.uuid4().hex[:6]

    # 1. n working orders at the venue
    errors = _submit_all(stack.web, tokens["trader"], _drill_orders(run, n))
    if errors:
        raise RuntimeError(f"drill orders refused: {errors[:3]}")
    settled = _wait(lambda: _count(trader, account=DRILL_ACCOUNT, status="ACCEPTED") >= n, 90, 0.2)
    result.orders = _count(trader, account=DRILL_ACCOUNT, status="ACCEPTED")
    result.open_at_venue_before = _open_at(sim_url)
    if settled != settled or result.open_at_venue_before < n:  # NaN: not all accepted
        raise RuntimeError(
            f"drill: {result.orders} accepted, {result.open_at_venue_before} open at the venue"
        )
    seq_before = max((r["seq"] for r in _sim(sim_url, "/sim/requests")["requests"]), default=0)

    # 2. a prober keeps submitting while the risk officer engages HALTED
    engaged = threading.Event()
    stop = threading.Event()
    probes: list[tuple[bool, int, str, str]] = []  # (after engagement, code, client id, body)

    def prober() -> None:
        api = Api(stack.web, tokens["trader"])
        i = 0
        while not stop.is_set():
            after = engaged.is_set()
            body = _drill_orders(f"{run}p", i + 1)[i]
            body["client_order_id"] = f"pr-{run}-{i}"
            body["price"] = str(Decimal(body["price"]) - Decimal("50"))
            r = api.post("/api/v1/orders/", body)
            probes.append((after, r.status_code, body["client_order_id"], r.text))
            i += 1
            time.sleep(0.005)

    probe_thread = threading.Thread(target=prober)
    probe_thread.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    r = risk.post(
        "/api/v1/risk/kill-switch/",
        {"scope": "venue", "target": DRILL_VENUE, "state": "HALTED", "reason": "kill drill"},
    )
    engaged.set()
    result.engage_request_s = round(time.perf_counter() - t0, 3)
    if r.status_code != 200:
        stop.set()
        probe_thread.join()
        raise RuntimeError(f"kill switch refused: {r.status_code} {r.text}")
    result.engaged_at = r.json()["changed_at"]

    # 3. the venue empties
    while _open_at(sim_url) and time.perf_counter() - t0 < 30:
        time.sleep(0.01)
    result.killswitch_s = round(time.perf_counter() - t0, 3)
    time.sleep(0.3)
    stop.set()
    probe_thread.join()

    # 4. nothing keeps working anywhere (after the follow-up sweep, too)
    result.oms_settled_s = round(_settle(trader, t0), 3)
    time.sleep(2.5)  # let the follow-up sweep run
    result.open_at_venue_after = _open_at(sim_url)
    result.working_in_oms_after = _count(trader, account=DRILL_ACCOUNT, status=LIVE)

    for after, code, cid, text in probes:
        if after:
            result.probes_after.append(code)
            if code == 422:
                reasons = json.loads(text)["error"]["reasons"]
                result.probe_reasons.extend(x["check"] for x in reasons)
        elif code == 201:
            result.probes_before_accepted.append(cid)
    engaged_at = result.engaged_at
    for cid in result.probes_before_accepted:
        rows = trader.get("/api/v1/orders/", params={"client_order_id": cid}).json()["results"]
        if rows and rows[0]["status"] != "DENIED" and rows[0]["created_at"] >= engaged_at:
            result.accepted_after_engagement.append(cid)
    requests_log = _sim(sim_url, "/sim/requests", since_seq=seq_before, limit=100000)["requests"]
    cancel_alls = [x for x in requests_log if x["kind"] == "cancel_all"]
    result.cancel_all_requests = len(cancel_alls)
    result.cancel_requests = sum(1 for x in requests_log if x["kind"] == "cancel")
    first_cancel_all = min((x["seq"] for x in cancel_alls), default=10**12)
    result.new_at_venue_after_cancel_all = [
        x["clientOrderId"]
        for x in requests_log
        if x["kind"] == "new" and x["outcome"] == "accepted" and x["seq"] > first_cancel_all
    ]
    states = risk.get("/api/v1/risk/trading-state/").json()["states"]
    result.sweep = {"states": [s for s in states if s["target"] == DRILL_VENUE]}

    # 5. release: the drill leaves the venue tradable again
    risk.post(
        "/api/v1/risk/kill-switch/",
        {"scope": "venue", "target": DRILL_VENUE, "state": "ACTIVE", "reason": "drill over"},
    )
    return result


def _settle(trader: Any, t0: float) -> float:
    """Seconds from the engagement until no drill order works in the OMS."""
    while time.perf_counter() - t0 < 60:
        if _count(trader, account=DRILL_ACCOUNT, status=LIVE) == 0:
            return time.perf_counter() - t0
        time.sleep(0.1)
    return float("nan")


def bench_killswitch(stack: Any) -> dict[str, Any]:
    """``killswitch_500_s``: 500 working orders at a simulated venue, HALTED engaged
    through the API, until the venue lists none of them (target <= 2 s)."""
    result = run_killswitch_drill(stack)
    return {
        "killswitch_500_s": result.killswitch_s,
        "killswitch_orders": result.open_at_venue_before,
        "killswitch_oms_settled_s": result.oms_settled_s,
        "killswitch_leaks": len(result.accepted_after_engagement)
        + sum(1 for c in result.probes_after if c != 422),
    }


def allow_load_test(account: str = "DEMO") -> None:
    """Raise the per-account limits a benchmark burst trips by design (order rate, open
    orders, identical orders: its orders are all alike), recorded like any change.
    Call with Django set up against the stack's database before the burst."""
    from orders.models import Account
    from risk import services
    from risk.models import RiskLimit

    acc = Account.objects.get(code=account)
    actor = services.operator("bench")
    for kind, value in (
        ("max_open_orders", "100000"),
        ("max_orders_per_second", "100000"),
        ("max_duplicate_orders", "100000"),
        ("max_gross_exposure", "1000000000"),
        ("max_position", "100000"),
    ):
        limit = RiskLimit.objects.filter(kind=kind, account=acc, instrument=None).first()
        if limit is None:
            services.limit_create(
                actor=actor, kind=kind, value=value, account=acc, reason="benchmark load"
            )
        else:
            services.limit_update(
                actor=actor, limit_id=limit.pk, value=value, reason="benchmark load"
            )


# --- command line: the drill's venue and its data ----------------------------------------


def _sim_main(argv: list[str]) -> None:
    """The simulated exchange with MAX_NUM_ORDERS raised (Binance allows 200 per symbol)."""
    import asyncio
    import dataclasses
    import logging

    from venues.sim import server

    args = server.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    config = server.config_from_args(args)
    config.symbols = [
        dataclasses.replace(
            sc,
            instrument=dataclasses.replace(sc.instrument, max_num_orders=DRILL_MAX_OPEN_PER_SYMBOL),
        )
        for sc in config.symbols
    ]
    asyncio.run(server.serve(config))


def prepare_drill(sim_url: str) -> dict[str, str]:
    """Account, venue, users and limits of the drill (idempotent); the API tokens."""
    from django.contrib.auth.models import Group, User

    from omsweb import api_tokens
    from omsweb.demo import ensure_reference_data
    from orders.models import Account
    from risk import services
    from risk.models import RiskLimit
    from venues.models import Venue

    ensure_reference_data()
    account, _ = Account.objects.get_or_create(
        code=DRILL_ACCOUNT, defaults={"name": "kill-switch drill"}
    )
    Venue.objects.update_or_create(
        name=DRILL_VENUE,
        defaults={
            "driver": Venue.Driver.SIM,
            "exchange_id": "binance",
            "base_url": sim_url,
            "api_key_env": "",
            "secret_env": "",
            "enabled": True,
            "rate_limits": {"weight": [10_000_000, 60], "orders": [10_000_000, 10]},
        },
    )
    tokens = {}
    for username, role in (("drill-risk", "risk"), ("drill-trader", "trader")):
        user, _ = User.objects.get_or_create(username=username)
        user.groups.add(Group.objects.get(name=role))
        tokens[role] = api_tokens.issue(user=user, source="bench")
    account.members.add(User.objects.get(username="drill-trader"))
    actor = services.operator("drill")
    for kind, value in (
        ("max_open_orders", "5000"),
        ("max_orders_per_second", "100000"),
        ("max_duplicate_orders", "100000"),
    ):
        limit = RiskLimit.objects.filter(kind=kind, account=account, instrument=None).first()
        if limit is None:
            services.limit_create(
                actor=actor, kind=kind, value=value, account=account, reason="kill drill"
            )
    from omsweb.celery import app

    app.send_task("oms.urgent.risk_warm_venues")  # the new venue, as beat would within 30 s
    return tokens


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv else ""
    if command == "sim":
        _sim_main(argv)
    elif command == "prepare":
        import django

        django.setup()
        print(json.dumps(prepare_drill(argv[0])))
    elif command == "eval":
        print(json.dumps(bench_risk_eval(int(argv[0]) if argv else 20000)))
    else:
        raise SystemExit("usage: python -m bench.risk sim|prepare SIM_URL|eval [N]")


if __name__ == "__main__":
    main()
