"""Fixtures: an in-process simulated exchange on a free 127.0.0.1 port, and ccxt clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ccxt
import pytest
import requests

from venues.sim.server import SimConfig, SimExchange, serve

API_KEY = "test-key"
API_SECRET = "test-secret"

CCXT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
    "warnOnFetchOpenOrdersWithoutSymbol": False,
}


@dataclass
class RunningSim:
    port: int
    sim: SimExchange
    loop: asyncio.AbstractEventLoop

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.base}/api/v3"

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's event loop thread (engine state is not thread-safe)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=5)

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        r = requests.request(method, f"{self.base}{path}", timeout=5, **kw)
        r.raise_for_status()
        return r.json()


class SimThread:
    """Runs :func:`venues.sim.server.serve` on its own event loop in a daemon thread."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.ready = threading.Event()
        self.port = 0
        self.sim: SimExchange | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="simex", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()

            def on_ready(port: int, sim: SimExchange) -> None:
                self.port = port
                self.sim = sim
                self.ready.set()

            await serve(self.config, self.stop_event, on_ready)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surface startup failures to the test
            self.error = exc
            self.ready.set()

    def start(self) -> RunningSim:
        self.thread.start()
        if not self.ready.wait(10) or self.error is not None:
            raise RuntimeError(f"simex did not start: {self.error}")
        assert self.sim is not None and self.loop is not None
        return RunningSim(self.port, self.sim, self.loop)

    def stop(self) -> None:
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)
        assert not self.thread.is_alive(), "simex thread did not stop"


def make_config(**overrides: Any) -> SimConfig:
    from venues.sim.server import AccountConfig

    cfg = SimConfig(
        name="sim-test",
        port=0,
        seed=7,
        accounts=[AccountConfig("default", API_KEY, API_SECRET)],
        market_paused=True,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


@pytest.fixture(scope="module")
def sim_server() -> Iterator[RunningSim]:
    runner = SimThread(make_config())
    running = runner.start()
    try:
        yield running
    finally:
        runner.stop()


@pytest.fixture
def sim(sim_server: RunningSim) -> RunningSim:
    """The module's server, reset (books, balances, faults, log) before each test."""
    sim_server.admin("POST", "/sim/reset")
    return sim_server


def ccxt_client(
    running: RunningSim, *, secret: str = API_SECRET, key: str = API_KEY, **extra: Any
) -> Any:
    ex = ccxt.binance(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "timeout": 5000,
            "options": dict(CCXT_OPTIONS),
            **extra,
        }
    )
    ex.urls["api"] = {**ex.urls["api"], "public": running.api, "private": running.api}
    return ex


def async_ccxt_client(running: RunningSim, **extra: Any) -> Any:
    import ccxt.async_support as accxt

    ex = accxt.binance(
        {
            "apiKey": API_KEY,
            "secret": API_SECRET,
            "enableRateLimit": False,
            "timeout": 5000,
            "options": dict(CCXT_OPTIONS),
            **extra,
        }
    )
    ex.urls["api"] = {**ex.urls["api"], "public": running.api, "private": running.api}
    return ex


@pytest.fixture
def ex(sim: RunningSim) -> Any:
    return ccxt_client(sim)
