"""``make bench``: the numbers of DESIGN section 10, measured against floors taken in the
same run on the same machine.

It starts a throw-away OMS (embedded PostgreSQL and Redis under
``OMS_HOME/bench/run``, or the servers named by ``DATABASE_URL``/``REDIS_URL`` with a
database of its own), the simulated exchange, web, workers and venue stream, then
measures:

* floors: bare Redis round trip, bare Celery no-op round trip (a task to the order
  queue and its result back), bare HTTP POST to the API (refused before any database
  work); the Celery and HTTP floors twice: back to back (``*_hot``) and interleaved
  with the one-at-a-time orders, after the same idle pause (what the ratios use);
* ``submit_accept``: REST submit accepted (HTTP round trip: validation, risk, commit);
* ``submit_ack``: submit to venue ack, one order at a time: from the submit task's
  hand-off to the broker (after the order's commit) to ``OrderAccepted``, timestamps
  taken by the processes themselves (``submit_ack_from_created`` starts earlier, at the
  order's creation in the API, so it adds the risk check and the commit);
* ``submit_db_round_trips`` / ``submit_redis_round_trips``: what one REST submit sends,
  counted in this process (the view run in process, ``bench/cpu.py``);
* ``orders_per_s``: a burst of orders from concurrent clients, until all are acked, and
  the CPU each process of the stack spent per order meanwhile
  (``burst_cpu_ms_per_order_*``, ``bench/cpu.py``: what caps the rate on shared cores);
* ``fix``: the FIX gateway's NewOrderSingle -> PendingNew and -> New, beside REST
  orders interleaved with them (``bench/fix.py``);
* ``fix_venue`` (``bench/fixvenue.py``): a venue submit over FIX against the same over
  REST, on one simulator;
* and the sections of ``bench/risk.py`` (risk evaluation, kill switch), ``bench/ws.py``
  (WebSocket), ``bench/backtest.py`` (replay rate against the parse floor) and
  ``bench/sor.py`` (the router's plan time, and what it saves on the demo
  venues' books).

It prints a table and writes ``OMS_HOME/bench/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from bench.stats import pct

ROOT = Path(__file__).resolve().parent.parent
# Idle pause before each measured call of the one-at-a-time section (and the ack poll).
PACE = 0.02
# Sections that run in process and need no stack.
IN_PROCESS_SECTIONS = {"md_book", "md_redis", "sor", "tca", "fix_venue", "backtest", "replay"}


def summary(name: str, values_ms: list[float]) -> dict[str, float]:
    return {
        f"{name}_p50_ms": round(pct(values_ms, 0.5), 3),
        f"{name}_p99_ms": round(pct(values_ms, 0.99), 3),
        f"{name}_n": len(values_ms),
    }


def timed(fn: Callable[[], Any], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[str, Any] = {}
        self.home = Path(os.environ.get("OMS_HOME") or ROOT / ".oms").resolve()
        self.run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self._bench_dir()))
        self.stack: Any = None
        self.started_services = False
        self.service_pids: dict[str, int] = {}

    def _bench_dir(self) -> Path:
        d = self.home / "bench"
        d.mkdir(parents=True, exist_ok=True)
        return d

    # --- set-up -----------------------------------------------------------------------

    def start(self) -> None:
        from omsweb import embedded
        from omsweb import stack as stack_mod

        base = dict(os.environ)
        if not base.get("DATABASE_URL") or not base.get("REDIS_URL"):
            services = embedded.ensure_services(self.run_dir / "services")
            self.started_services = True
            from bench.cpu import pid_file

            for role, path in (
                ("postgres", self.run_dir / "services" / embedded.PG_DIR / "postmaster.pid"),
                ("redis", self.run_dir / "services" / "redis" / "redis.pid"),
            ):
                if (pid := pid_file(path)) is not None:
                    self.service_pids[role] = pid
            base.setdefault("DATABASE_URL", services.database_url or "")
            base.setdefault("REDIS_URL", services.redis_url or "")
        env = stack_mod.isolated_env(base, db_name="oms_bench", redis_db=11)
        env.update(OMS_HOME=str(self.run_dir), OMS_LOG_LEVEL="WARNING")
        sim_port = stack_mod.free_port()
        token = stack_mod.setup_database(env, sim_port, "bench-trader")
        self.stack = stack_mod.launch(env, self.run_dir, token=token, sim_port=sim_port)
        # this process talks to the same database and Redis as the stack
        os.environ.update(
            DATABASE_URL=env["DATABASE_URL"], REDIS_URL=env["REDIS_URL"], OMS_HOME=str(self.run_dir)
        )
        import django

        django.setup()
        # The burst sends thousands of alike orders from one account by design; raise
        # the limits it would trip (recorded like any limit change).
        from bench.risk import allow_load_test

        allow_load_test("DEMO")

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        if self.started_services:
            from omsweb import embedded

            embedded.stop_services(self.run_dir / "services")
        if not self.args.keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # --- floors -----------------------------------------------------------------------

    def floors(self) -> None:
        """Back to back (``*_hot``): what the machine does with everything warm. The
        ratios use the same floors measured between the orders (``submit_latency``)."""
        import redis

        from omsweb.celery import app

        r = redis.Redis.from_url(os.environ["REDIS_URL"])
        self.results.update(summary("redis_floor", timed(r.ping, 2000)))
        ping = app.signature("oms.ping")
        self.results.update(
            summary("celery_floor_hot", timed(lambda: ping.apply_async().get(timeout=10), 300))
        )
        self.results.update(summary("http_post_floor_hot", timed(self._bare_post, 500)))

    def _bare_post(self) -> None:
        """A POST to the order API refused before any database work (no credentials)."""
        session = getattr(self, "_bare_session", None) or requests.Session()
        self._bare_session = session
        r = session.post(self.stack.web + "/api/v1/orders/", json={}, timeout=10)
        assert r.status_code == 401

    # --- order path -------------------------------------------------------------------

    def _price(self) -> Decimal:
        book = self.stack.sim_get("/sim/state", depth=1)["books"]["BTCUSDT"]
        return (Decimal(book["bids"][0][0]) * Decimal("0.9")).quantize(Decimal("0.01"))

    def _order(self, i: int, price: Decimal, prefix: str) -> dict[str, Any]:
        return {
            "client_order_id": f"{prefix}-{i}",
            "account": "DEMO",
            "symbol": "BTC/USDT",
            "venue": "sim-a",  # direct: the order path's figures (the router's: bench/sor.py)
            "side": "buy",
            "type": "limit",
            "quantity": "0.001",
            "price": str(price),
            # IOC away from the market: acked, then its remainder canceled, so nothing
            # piles up at the venue (which caps open orders per symbol, as Binance does)
            "time_in_force": "IOC",
        }

    def _ack_latencies(self, ids: list[int]) -> dict[str, list[float]]:
        """Per order, from the processes' own timestamps (ms):

        * ``submit_ack``: queued -> acked. *queued* is when the web process handed the
          submit task to the broker, after the order's commit (``enqueued_at`` in the
          ``OrderSubmitted`` event); *acked* is the ``OrderAccepted`` event's time, in
          the statement that records the venue's answer. The Celery floor's scope (a
          task through the broker to a worker) plus the order's own work;
        * ``submit_ack_pickup``: queued -> marked sent (broker, worker, the mark);
        * ``submit_ack_venue``: marked sent -> acked (the venue call, applying it);
        * ``submit_ack_from_created``: the order's creation in the API -> acked (adds
          the risk check and the commit)."""
        from datetime import UTC, datetime

        from orders.models import Order, OrderEvent

        created = dict(Order.objects.filter(pk__in=ids).values_list("pk", "created_at"))
        events = OrderEvent.objects.filter(
            order_id__in=ids, kind__in=["OrderSubmitted", "OrderAccepted"]
        ).values_list("order_id", "kind", "payload", "created_at")
        queued: dict[int, datetime] = {}
        sent: dict[int, datetime] = {}
        acked: dict[int, datetime] = {}
        for order_id, kind, payload, at in events:
            if kind == "OrderAccepted":
                acked[order_id] = at
            elif (payload or {}).get("enqueued_at") and order_id not in queued:
                queued[order_id] = datetime.fromtimestamp(payload["enqueued_at"], UTC)
                sent[order_id] = at

        def ms(start: dict[int, datetime], end: dict[int, datetime]) -> list[float]:
            return [
                (end[i] - start[i]).total_seconds() * 1e3 for i in ids if i in start and i in end
            ]

        return {
            "submit_ack": ms(queued, acked),
            "submit_ack_pickup": ms(queued, sent),
            "submit_ack_venue": ms(sent, acked),
            "submit_ack_from_created": ms(created, acked),
        }

    def _wait_acked(self, ids: list[int], timeout: float) -> int:
        from orders.domain.lifecycle import OrderStatus
        from orders.models import Order

        unanswered = [OrderStatus.PENDING_NEW.value, OrderStatus.SUBMITTED.value]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = Order.objects.filter(pk__in=ids, status__in=unanswered).count()
            if pending == 0:
                return 0
            time.sleep(PACE)
        return pending

    def _cancel_all(self) -> None:
        api = self.stack.api()
        api.post("/api/v1/orders/cancel-all/", {})
        from orders.domain import lifecycle as lc
        from orders.models import Order

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not Order.objects.filter(status__in=lc.values(lc.OPEN_STATUSES)).exists():
                return
            time.sleep(0.2)

    def submit_latency(self) -> None:
        """One order at a time, each followed by its ack; between them, one bare Celery
        round trip and one bare POST, each after the same idle pause (PACE) as the order.

        Interleaving matters on this machine: a call made after ~20 ms of idleness costs
        two to three times what the same call costs back to back (caches, a vCPU woken
        up), so floors measured in a tight loop would be compared with orders measured
        one at a time. Here the floors and the orders see the same conditions."""
        from omsweb.celery import app

        api = self.stack.api()
        price = self._price()
        ping = app.signature("oms.ping")
        accept: list[float] = []
        celery: list[float] = []
        http: list[float] = []
        ids: list[int] = []
        n = self.args.sequential
        for i in range(n + 20):
            time.sleep(PACE)
            t0 = time.perf_counter()
            ping.apply_async().get(timeout=10)
            celery_ms = (time.perf_counter() - t0) * 1e3
            time.sleep(PACE)
            t0 = time.perf_counter()
            self._bare_post()
            http_ms = (time.perf_counter() - t0) * 1e3
            time.sleep(PACE)
            t0 = time.perf_counter()
            r = api.post("/api/v1/orders/", self._order(i, price, "seq"))
            elapsed = (time.perf_counter() - t0) * 1e3
            assert r.status_code == 201, r.text
            order_id = r.json()["id"]
            if self._wait_acked([order_id], 10):
                raise RuntimeError(f"order {order_id} not acked:\n{self.stack.logs()}")
            if i >= 20:  # warm-up: connections, market data, JIT-less caches
                accept.append(elapsed)
                celery.append(celery_ms)
                http.append(http_ms)
                ids.append(order_id)
        self.results.update(summary("celery_floor", celery))
        self.results.update(summary("http_post_floor", http))
        self.results.update(summary("submit_accept", accept))
        for name, values in self._ack_latencies(ids).items():
            self.results.update(summary(name, values))
        self.submit_round_trips()
        self._cancel_all()

    def throughput(self) -> None:
        price = self._price()
        n, clients = self.args.burst, self.args.clients
        ids: list[int] = []
        lock = threading.Lock()
        errors: list[str] = []

        def client(k: int) -> None:
            api = self.stack.api()
            for i in range(k, n, clients):
                r = api.post("/api/v1/orders/", self._order(i, price, "burst"))
                if r.status_code != 201:
                    errors.append(r.text)
                    continue
                with lock:
                    ids.append(r.json()["id"])

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        from bench import cpu

        meter = cpu.CpuMeter(self._cpu_roles()) if cpu.available() else None
        if meter:
            meter.start()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        submitted_s = time.perf_counter() - t0
        left = self._wait_acked(ids, 120)
        total_s = time.perf_counter() - t0
        if meter:
            self.results.update(cpu.per_order(meter.stop(), len(ids)))
        lat = self._ack_latencies(ids)["submit_ack"]
        self.results.update(
            {
                "orders_per_s": round(len(ids) / total_s, 1),
                "burst_orders": len(ids),
                "burst_errors": len(errors),
                "burst_unacked": left,
                "burst_api_accept_per_s": round(len(ids) / submitted_s, 1),
                "burst_ack_p50_ms": round(pct(lat, 0.5), 2),
                "burst_ack_p99_ms": round(pct(lat, 0.99), 2),
            }
        )
        self._cancel_all()

    def _cpu_roles(self) -> dict[str, list[int]]:
        """The stack's processes by role (each with its children), for ``bench/cpu.py``."""
        roles: dict[str, list[int]] = {name: [pid] for name, pid in self.service_pids.items()}
        for name, proc in self.stack.procs.items():
            if name.startswith("worker-orders-"):
                role = "venue_worker"
            elif name.startswith("worker-"):
                role = "other_workers"
            elif name in ("venuestream", "marketdata"):
                role = "streams"
            elif name.startswith("sim"):
                role = "sim"
            else:
                role = name
            roles.setdefault(role, []).append(proc.pid)
        return roles

    def submit_round_trips(self) -> None:
        """Database statements and Redis round trips of one REST submit, the view run in
        this process (Django's test client, the stack's database and Redis): the
        latency's part that is waiting, whatever the machine's load."""
        from django.test import Client

        from bench.cpu import round_trips

        client = Client(HTTP_AUTHORIZATION=f"Token {self.stack.token}")
        price = self._price()
        for i in range(3):  # warm: connections, prebuilt statements
            body = self._order(i, price, "trips")
            with round_trips() as counts:
                r = client.post("/api/v1/orders/", body, content_type="application/json")
            assert r.status_code == 201, r.content
        self.results["submit_db_round_trips"] = counts["db"]
        self.results["submit_redis_round_trips"] = counts["redis"]

    # --- sections in bench/risk.py and bench/ws.py ------------------------------------

    def extra_sections(self) -> None:
        try:
            from bench.risk import bench_risk_eval
        except ImportError:
            bench_risk_eval = None
        if bench_risk_eval:
            self.results.update(bench_risk_eval())
        from bench.audit import bench_audit_seal

        self.results.update(bench_audit_seal())
        try:
            from bench.risk import bench_killswitch
        except ImportError:
            bench_killswitch = None
        if bench_killswitch:
            self.results.update(bench_killswitch(self.stack))
        try:
            from bench.ws import bench_ws
        except ImportError:
            bench_ws = None
        if bench_ws:
            self.results.update(bench_ws(self.stack))

    def fix(self) -> None:
        from bench.fix import bench_fix

        n = min(self.args.sequential, 200)
        self.results.update(bench_fix(self.stack, n=n, price=self._price(), home=self.run_dir))
        if "fix_rest_accept_p50_ms" in self.results:
            self.results["ratio_fix_accept_vs_rest_accept"] = round(
                self.results["fix_accept_p50_ms"] / self.results["fix_rest_accept_p50_ms"], 2
            )

    def md_book(self) -> None:
        from bench.marketdata import bench_md_book

        self.results.update(bench_md_book())

    def tca(self) -> None:
        from bench.tca import bench_tca

        self.results.update(bench_tca())

    def md_redis(self) -> None:
        from bench.marketdata import bench_md_exchange_to_redis

        self.results.update(bench_md_exchange_to_redis())

    def sor(self) -> None:
        from bench.sor import bench_sor_improvement, bench_sor_plan

        self.results.update(bench_sor_plan())
        self.results.update(bench_sor_improvement())

    def fix_venue(self) -> None:
        from bench.fixvenue import bench_fix_venue

        self.results.update(bench_fix_venue())

    def backtest(self) -> None:
        from bench.backtest import bench_backtest

        self.results.update(bench_backtest())

    def replay(self) -> None:
        from bench.replay import bench_replay

        self.results.update(bench_replay())

    # --- report -----------------------------------------------------------------------

    def report(self) -> None:
        r = self.results
        if "celery_floor_p50_ms" in r and "submit_ack_p50_ms" in r:
            r["ratio_submit_ack_vs_celery_floor"] = round(
                r["submit_ack_p50_ms"] / r["celery_floor_p50_ms"], 2
            )
        r["machine"] = {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        }
        r["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        out = self._bench_dir() / "latest.json"
        out.write_text(json.dumps(r, indent=2))
        targets = {
            "submit_accept_p50_ms": ("<=", 5),
            "submit_accept_p99_ms": ("<=", 15),
            "ratio_submit_ack_vs_celery_floor": ("<=", 2),
            "orders_per_s": (">=", 300),
            "risk_eval_p50_us": ("<=", 5),
            "risk_eval_p99_us": ("<=", 20),
            "killswitch_500_s": ("<=", 2),
            "fill_to_ws_p50_ms": ("<=", 50),
            "md_book_update_p50_us": ("<=", 20),
            "md_exchange_to_redis_p50_ms": ("<=", 5),
            "ratio_fix_accept_vs_rest_accept": ("<", 1),
            "sor_plan_p50_us": ("<=", 50),
            "sor_improvement_bps": (">=", 0),
            "backtest_events_per_s": (">=", 100_000),
        }
        print(f"\n{'metric':40s} {'value':>12s}   target")
        for key, value in r.items():
            if isinstance(value, dict):
                continue
            target = targets.get(key)
            mark = ""
            if target and isinstance(value, int | float):
                op, limit = target
                ok = {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[op]
                mark = f"{op} {limit}  {'ok' if ok else 'MISSED'}"
            print(f"{key:40s} {value!s:>12s}   {mark}")
        print(f"\nwritten to {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="oms bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sequential", type=int, default=200, help="orders for latency")
    parser.add_argument("--burst", type=int, default=2000, help="orders in the burst")
    parser.add_argument("--clients", type=int, default=16, help="concurrent API clients")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument(
        "--only",
        default="",
        help="comma list of sections: floors,latency,burst,extra,fix,md_book,md_redis,sor,tca,"
        "fix_venue,backtest,replay",
    )
    args = parser.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    bench = Bench(args)
    try:
        if not only or only - IN_PROCESS_SECTIONS:
            bench.start()
        for name, fn in (
            ("floors", bench.floors),
            ("latency", bench.submit_latency),
            ("burst", bench.throughput),
            ("extra", bench.extra_sections),
            ("fix", bench.fix),
            ("md_book", bench.md_book),
            ("md_redis", bench.md_redis),
            ("sor", bench.sor),
            ("tca", bench.tca),
            ("fix_venue", bench.fix_venue),
            ("backtest", bench.backtest),
            ("replay", bench.replay),
        ):
            if only and name not in only:
                continue
            print(f"== {name}", flush=True)
            fn()
    except Exception:
        if bench.stack is not None:
            print(bench.stack.logs(60), file=sys.stderr)
        raise
    finally:
        bench.stop()
    bench.report()


if __name__ == "__main__":
    main()
