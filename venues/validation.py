"""What makes a venue row usable, checked in one place: by the model's ``clean`` (the
admin), by the venues API's serializer, and at run time before a process calls the
venue (reconciliation, the venue stream, the adapter warm-up), which then mark a venue
that fails MISCONFIGURED instead of failing on every attempt (``venues/status.py``).

Django-free: takes any object shaped like a Venue row.
"""

from __future__ import annotations

import os
import re
from typing import Any

DRIVERS = ("sim", "ccxt", "fix")

# a host name or an IPv4/IPv6 address, no scheme or port
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]+)$")
# CompIDs go into every FIX header: printable, no "=" or SOH, short
_COMP_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")

# http(s)://host[:port][/path]: no user info, query or fragment; host a name or IPv4
_URL = re.compile(
    r"^https?://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"
)


def ccxt_exchange_ids() -> frozenset[str]:
    import ccxt

    return frozenset(ccxt.exchanges)


def url_problem(url: str) -> str | None:
    """None when ``url`` has the form http(s)://host[:port][/path]."""
    match = _URL.match(url)
    if match is None:
        return f"{url!r} is not of the form http(s)://host[:port][/path]"
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return f"port {port} is out of range"
    return None


def field_problems(venue: Any) -> dict[str, str]:
    """Problems of the row's own fields, by field name: each makes the row invalid."""
    problems: dict[str, str] = {}
    driver = getattr(venue, "driver", "")
    base_url = (getattr(venue, "base_url", "") or "").strip()
    exchange_id = getattr(venue, "exchange_id", "") or ""
    if driver not in DRIVERS:
        problems["driver"] = f"unknown driver {driver!r} (one of {', '.join(DRIVERS)})"
    if driver == "ccxt" and exchange_id not in ccxt_exchange_ids():
        problems["exchange_id"] = (
            f"unknown ccxt exchange id {exchange_id!r} (e.g. binance, kraken, coinbase)"
        )
    if driver == "sim" and not base_url:
        problems["base_url"] = "a sim venue needs the simulator's URL, e.g. http://127.0.0.1:8101"
    elif base_url:
        why = url_problem(base_url)
        if why:
            problems["base_url"] = why
    if driver == "fix":
        problems.update(fix_problems(venue))
    return problems


def fix_problems(venue: Any) -> dict[str, str]:
    """A fix venue's own fields: where to connect and the two CompIDs."""
    problems: dict[str, str] = {}
    host = (getattr(venue, "fix_host", "") or "").strip()
    port = getattr(venue, "fix_port", None)
    if not host:
        problems["fix_host"] = "a fix venue needs the venue's FIX host, e.g. 127.0.0.1"
    elif not _HOST.match(host):
        problems["fix_host"] = f"{host!r} is not a host name or IP address"
    if port is None or port == "":
        problems["fix_port"] = "a fix venue needs the venue's FIX port, e.g. 9881"
    elif not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        problems["fix_port"] = f"port {port!r} is out of range (1-65535)"
    for field, example in (("sender_comp_id", "OMS"), ("target_comp_id", "SIMEX")):
        value = (getattr(venue, field, "") or "").strip()
        if not value:
            problems[field] = f"a fix venue needs {field}, e.g. {example}"
        elif not _COMP_ID.match(value):
            problems[field] = f"{value!r}: letters, digits, '.', '_' or '-', at most 32"
    return problems


def credential_problem(venue: Any) -> tuple[str, str] | None:
    """(field, why) when the venue's credentials are not available to this process: the
    environment variables *named* on the row must be set (a ccxt venue must name both).
    The one place that knows where credentials come from."""
    driver = getattr(venue, "driver", "")
    for attr in _CREDENTIALS:
        var = (getattr(venue, attr, "") or "").strip()
        if not var:
            if driver == "ccxt":
                return attr, f"a ccxt venue needs {attr} (the environment variable to read)"
            continue
        if not os.environ.get(var):
            return attr, f"environment variable {var} (named in {attr}) is not set"
    return None


def enabling_problem(before: Any | None, after: Any) -> str | None:
    """Why the row ``after`` (about to be saved; ``before``: the saved row, None when new)
    must stay disabled: it is being enabled (created enabled, switched on, or its
    credential names changed while enabled) and its credentials are missing. An edit
    of anything else leaves an enabled venue enabled: if its credentials went missing
    since, it is MISCONFIGURED at run time (``venues.status.check_config``)."""
    if not getattr(after, "enabled", False):
        return None
    enabling = (
        before is None
        or not before.enabled
        or any(getattr(before, a, "") != getattr(after, a, "") for a in _CREDENTIALS)
    )
    missing = credential_problem(after) if enabling else None
    return f"{missing[0]}: {missing[1]}" if missing else None


_CREDENTIALS = ("api_key_env", "secret_env")


def config_problem(venue: Any) -> str | None:
    """Why this process cannot drive the venue (one line), or None."""
    problems = field_problems(venue)
    if problems:
        field, why = next(iter(problems.items()))
        return f"{field}: {why}"
    credentials = credential_problem(venue)
    if credentials:
        return f"{credentials[0]}: {credentials[1]}"
    return None
