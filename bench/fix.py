"""``make bench --only fix``: the FIX gateway's order path beside REST's, in one run.

A gateway (``oms fixgw``) joins the bench stack with a session for the bench trader; a
plain-socket client (simplefix) sends NewOrderSingles one at a time, and REST orders are
interleaved with them after the same idle pause:

* ``fix_accept``: NewOrderSingle sent -> ExecutionReport PendingNew received (parse,
  risk, commit, the report listener's stream, the session's pump, the socket);
* ``fix_ack``: NewOrderSingle sent -> ExecutionReport New received (adds the submit
  task, the venue call and the ack's report);
* ``fix_session_floor``: TestRequest sent -> Heartbeat received (the session layer and
  the socket, no application code), the FIX counterpart of ``http_post_floor``;
* ``fix_rest_accept``: the same order over REST, POST sent -> 201 received;
* ``fix_rest_ack``: the REST order's POST sent -> its ``OrderAccepted`` event written
  (the OMS's own timestamp: REST has no push to a client; FIX's figure includes the
  report's trip back to the client on top).
"""

from __future__ import annotations

import socket
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix

from bench.stats import pct

SENDER, TARGET = "BENCH", "OMS"
PACE = 0.02
WARMUP = 20


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class Client:
    """Just enough FIX for a bench: logon with reset, send, read execution reports."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.parser = simplefix.FixParser()
        self.seq = 0

    def send(self, msg_type: str, *fields: tuple[int, str]) -> None:
        self.seq += 1
        msg = simplefix.FixMessage()
        for tag, value in ((8, "FIX.4.4"), (35, msg_type), (34, str(self.seq)), (49, SENDER),
                           (52, _now()), (56, TARGET), *fields):  # fmt: skip
            msg.append_pair(tag, value)
        self.sock.sendall(msg.encode())

    def receive(self) -> simplefix.FixMessage:
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                if msg.get(35) == b"1":  # TestRequest
                    self.send("0", (112, msg.get(112).decode()))
                    continue
                return msg
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("the FIX gateway closed the connection")
            self.parser.append_buffer(data)

    def wait(self, cl_ord_id: str, exec_type: bytes) -> None:
        while True:
            msg = self.receive()
            if msg.get(11) == cl_ord_id.encode() and msg.get(150) == exec_type:
                return
            if msg.get(11) == cl_ord_id.encode() and msg.get(150) == b"8":
                raise RuntimeError(f"{cl_ord_id} rejected: {msg.get(58)!r}")


def _start_gateway(stack: Any, home: Path) -> tuple[Any, int]:
    from django.contrib.auth.models import User

    from fixgw.models import FixSession
    from omsweb.stack import Proc, free_port, wait_for

    user = User.objects.get(username="bench-trader")
    FixSession.objects.get_or_create(
        sender_comp_id=SENDER, target_comp_id=TARGET, defaults={"user": user}
    )
    port = free_port()
    log = home / "fixgw.log"
    argv = [sys.executable, "-m", "omsweb.cli", "fixgw", "--port", str(port)]
    proc = Proc(argv, {**stack.env, "OMS_HOME": str(home)}, log)
    wait_for(lambda: "ready" in log.read_text() or not proc.alive(), timeout=60)
    if not proc.alive():
        raise RuntimeError(f"fixgw did not start:\n{log.read_text()}")
    return proc, port


def _acked_at(order_ids: list[int]) -> dict[int, datetime]:
    from orders.models import OrderEvent

    rows = OrderEvent.objects.filter(order_id__in=order_ids, kind="OrderAccepted")
    return dict(rows.values_list("order_id", "created_at"))


def bench_fix(stack: Any, *, n: int, price: Decimal, home: Path) -> dict[str, float]:
    proc, port = _start_gateway(stack, home)
    try:
        client = Client(port)
        client.send("A", (98, "0"), (108, "30"), (141, "Y"), (553, "bench-trader"),
                    (554, stack.token))  # fmt: skip
        reply = client.receive()
        if reply.get(35) != b"A":
            raise RuntimeError(f"FIX logon refused: {reply.get(58)!r}")
        api = stack.api()
        accept, ack, rest_accept, floor = [], [], [], []
        rest_started: dict[int, float] = {}
        for i in range(n + WARMUP):
            cl = f"fixb-{i}"
            time.sleep(PACE)
            t = time.perf_counter()
            client.send("1", (112, f"t{i}"))  # TestRequest -> Heartbeat: the session floor
            while client.receive().get(112) != f"t{i}".encode():
                pass
            floor_ms = (time.perf_counter() - t) * 1e3
            # IOC away from the market: acked, then its remainder canceled
            time.sleep(PACE)
            t0 = time.perf_counter()
            client.send("D", (11, cl), (1, "DEMO"), (55, "BTC/USDT"), (54, "1"), (60, _now()),
                        (38, "0.001"), (40, "2"), (44, str(price)), (59, "3"))  # fmt: skip
            client.wait(cl, b"A")
            t1 = time.perf_counter()
            client.wait(cl, b"0")
            t2 = time.perf_counter()
            time.sleep(PACE)
            wall = time.time()
            t3 = time.perf_counter()
            r = api.post("/api/v1/orders/", {
                "client_order_id": f"fixr-{i}", "account": "DEMO", "symbol": "BTC/USDT",
                "side": "buy", "type": "limit", "quantity": "0.001", "price": str(price),
                "time_in_force": "IOC",
            })  # fmt: skip
            t4 = time.perf_counter()
            if r.status_code != 201:
                raise RuntimeError(r.text)
            if i >= WARMUP:
                accept.append((t1 - t0) * 1e3)
                ack.append((t2 - t0) * 1e3)
                rest_accept.append((t4 - t3) * 1e3)
                floor.append(floor_ms)
                rest_started[r.json()["id"]] = wall
        time.sleep(2)  # the last REST orders' acks
        acked = _acked_at(list(rest_started))
        rest_ack = [(acked[k].timestamp() - t) * 1e3 for k, t in rest_started.items() if k in acked]
        client.sock.close()
    finally:
        proc.stop()
    out: dict[str, float] = {}
    for name, values in (("fix_accept", accept), ("fix_ack", ack),
                         ("fix_rest_accept", rest_accept), ("fix_rest_ack", rest_ack),
                         ("fix_session_floor", floor)):  # fmt: skip
        out[f"{name}_p50_ms"] = round(pct(values, 0.5), 3)
        out[f"{name}_p99_ms"] = round(pct(values, 0.99), 3)
    out["fix_n"] = len(accept)
    return out
