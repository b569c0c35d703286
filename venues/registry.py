"""Which adapter drives a venue. Django-free: takes any object shaped like a Venue row.

A venue row carries ``name``, ``driver`` ('sim' | 'ccxt'), ``exchange_id``,
``base_url``, ``api_key_env`` and ``secret_env``. Credentials are read from the
environment variables *named* on the row, never stored on it, and only from the venue's
own ``OMS_VENUE_<NAME>_KEY`` / ``_SECRET`` (``venues/credentials.py``).

``driver='fix'`` is a FIX 4.4 venue (``venues/fix_adapter.py``): orders go over FIX
through the venue's ``oms fixvenue`` process; its REST market data (books, balances, the
markets it lists), when the row has a ``base_url``, through ccxt as for a sim venue.

``driver='sim'`` is the built-in simulated exchange: it speaks the Binance spot REST
API, so it is driven by ccxt's ``binance`` class pointed at ``base_url``, with the
credentials from the named variables if any, else the simulator's default key/secret.

Adapters are cached per process (one ccxt instance and HTTP session per venue) and
keyed by everything that shapes them; a fork (Celery prefork) starts a fresh cache so
children never share their parent's sockets. Call ``reset_adapters()`` when a venue
row changes and in tests.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from venues import credentials
from venues.base import VenueAdapter
from venues.ccxt_adapter import CcxtAdapter, VenueConfig

SIM_EXCHANGE_ID = "binance"
DRIVERS = ("sim", "ccxt", "fix")


class VenueConfigError(ValueError):
    """A venue row cannot be turned into an adapter (unknown driver, missing env var...)."""


_lock = threading.Lock()
_cache: dict[tuple, VenueAdapter] = {}
_cache_pid: int | None = None


def _sim_default_credentials() -> tuple[str, str]:
    from venues.sim import server  # the simulator owns its defaults

    return server.DEFAULT_API_KEY, server.DEFAULT_API_SECRET


def _env(venue: Any, attr: str) -> str | None:
    var = (getattr(venue, attr, None) or "").strip()
    try:
        return credentials.read(venue.name, attr, var)
    except credentials.CredentialNameError as exc:
        raise VenueConfigError(str(exc)) from None
    except KeyError:
        raise VenueConfigError(
            f"venue {venue.name}: environment variable {var} (named in {attr}) is not set"
        ) from None


def _key(venue: Any) -> tuple:
    return (
        venue.name,
        venue.driver,
        getattr(venue, "exchange_id", None) or None,
        getattr(venue, "base_url", None) or None,
        getattr(venue, "api_key_env", None) or None,
        getattr(venue, "secret_env", None) or None,
        getattr(venue, "fix_host", None) or None,
        getattr(venue, "fix_port", None) or None,
        getattr(venue, "sender_comp_id", None) or None,
        getattr(venue, "target_comp_id", None) or None,
    )


def _fix_adapter(venue: Any) -> VenueAdapter:
    """A fix venue's adapter: requests through its ``oms fixvenue`` process over Redis
    (a client of its own: its blocking reads outlast the shared client's timeout)."""
    from omsweb.redis_client import blocking_client
    from venues.fix_adapter import FixAdapter
    from venues.validation import fix_problems

    problems = fix_problems(venue)
    if problems:
        field, why = next(iter(problems.items()))
        raise VenueConfigError(f"venue {venue.name}: {field}: {why}")
    market_data = CcxtAdapter(config_for(venue)) if getattr(venue, "base_url", "") else None
    return FixAdapter(venue.name, blocking_client(), market_data=market_data)


def config_for(venue: Any) -> VenueConfig:
    """The ``VenueConfig`` of a venue row (reads the named environment variables)."""
    driver = venue.driver
    base_url = getattr(venue, "base_url", None) or None
    api_key, secret = _env(venue, "api_key_env"), _env(venue, "secret_env")
    if driver == "fix" and not base_url:
        raise VenueConfigError(f"venue {venue.name}: a fix venue without base_url has no REST API")
    if driver in ("sim", "fix"):
        if not base_url:
            raise VenueConfigError(f"venue {venue.name}: a sim venue needs a base_url")
        if api_key is None or secret is None:
            default_key, default_secret = _sim_default_credentials()
            api_key = api_key if api_key is not None else default_key
            secret = secret if secret is not None else default_secret
        return VenueConfig(
            name=venue.name,
            exchange_id=SIM_EXCHANGE_ID if driver == "sim" else venue.exchange_id,
            base_url=base_url,
            api_key=api_key,
            secret=secret,
        )
    if driver == "ccxt":
        exchange_id = getattr(venue, "exchange_id", None)
        if not exchange_id:
            raise VenueConfigError(f"venue {venue.name}: a ccxt venue needs an exchange_id")
        return VenueConfig(
            name=venue.name,
            exchange_id=exchange_id,
            base_url=base_url,
            api_key=api_key,
            secret=secret,
        )
    raise VenueConfigError(f"venue {venue.name}: unknown driver {driver!r} (one of {DRIVERS})")


def adapter_for(venue: Any) -> VenueAdapter:
    """The process-wide adapter for ``venue`` (built on first use)."""
    global _cache_pid
    key = _key(venue)
    with _lock:
        if _cache_pid != os.getpid():
            _cache.clear()  # inherited across fork: never reuse the parent's sessions
            _cache_pid = os.getpid()
        adapter = _cache.get(key)
        if adapter is None:
            adapter = (
                _fix_adapter(venue) if venue.driver == "fix" else CcxtAdapter(config_for(venue))
            )
            _cache[key] = adapter
        return adapter


def reset_adapters() -> None:
    """Drop every cached adapter (closing their sessions)."""
    with _lock:
        adapters = list(_cache.values()) if _cache_pid == os.getpid() else []
        _cache.clear()
    for adapter in adapters:
        try:
            adapter.close()
        except Exception:  # noqa: S110 - closing is best effort
            pass
