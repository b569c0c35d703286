"""The demo data set ``oms up`` loads once: accounts, instruments, the two simulated
venues, and the users admin, risk and trader with random passwords and API tokens."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from fixgw.models import FixSession
from omsweb import api_tokens
from omsweb.roles import ADMIN, RISK, TRADER
from orders.models import Account, Instrument
from venues.credentials import env_name
from venues.models import Venue

INSTRUMENTS = [
    # symbol, base, quote, tick, lot, min notional
    ("BTC/USDT", "BTC", "USDT", "0.01", "0.00001", "5"),
    ("ETH/USDT", "ETH", "USDT", "0.01", "0.0001", "5"),
]
# code, name, self-trade prevention group (one owner: neither may trade against the other)
ACCOUNTS = [
    ("DEMO", "Demo strategy account", "demo-desk"),
    ("HEDGE", "Hedging account", "demo-desk"),
]
SIM_PORTS = {"sim-a": 8101, "sim-b": 8102}


def ensure_reference_data() -> None:
    for code, name, stp_group in ACCOUNTS:
        Account.objects.get_or_create(code=code, defaults={"name": name, "stp_group": stp_group})
    for symbol, base, quote, tick, lot, min_notional in INSTRUMENTS:
        Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={
                "base": base,
                "quote": quote,
                "tick_size": Decimal(tick),
                "lot_size": Decimal(lot),
                "min_notional": Decimal(min_notional),
            },
        )
    for name, port in SIM_PORTS.items():
        Venue.objects.get_or_create(
            name=name,
            defaults={
                "driver": Venue.Driver.SIM,
                "exchange_id": "binance",
                "base_url": f"http://127.0.0.1:{port}",
                "api_key_env": env_name(name, "api_key_env"),
                "secret_env": env_name(name, "secret_env"),
            },
        )
    if settings.DEMO_FIX_VENUE:
        _demo_fix_venue()
    for role in (TRADER, RISK, ADMIN):
        Group.objects.get_or_create(name=role)
    from risk.defaults import ensure_default_limits  # fail closed: no limits, no trading

    ensure_default_limits()


def _demo_fix_venue() -> None:
    """The demo FIX venue (OMS_DEMO_FIX_VENUE=1): ``oms up`` runs its simulator."""
    from venues.sim.server import DEMO_FIX_VENUE

    name, port, fix_port = DEMO_FIX_VENUE
    Venue.objects.get_or_create(
        name=name,
        defaults={
            "driver": Venue.Driver.FIX,
            "exchange_id": "binance",  # its REST market data speaks the Binance API
            "base_url": f"http://127.0.0.1:{port}",
            "fix_host": "127.0.0.1",
            "fix_port": fix_port,
            "sender_comp_id": "OMS",
            "target_comp_id": "SIMEX",
            "api_key_env": env_name(name, "api_key_env"),
            "secret_env": env_name(name, "secret_env"),
        },
    )


@transaction.atomic
def load_demo(home: Path) -> bool:
    """Create the demo set once. Returns True when users were created (first start)."""
    ensure_reference_data()
    if User.objects.filter(username="admin").exists():
        _demo_fix_session(home)  # a home made before the FIX gateway existed
        return False
    creds: dict[str, dict[str, Any]] = {}
    for username, role in (("admin", ADMIN), ("risk", RISK), ("trader", TRADER)):
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(
            username=username,
            password=password,
            is_staff=role in (ADMIN, RISK),
            is_superuser=role == ADMIN,
        )
        user.groups.add(Group.objects.get(name=role))
        token = api_tokens.issue(user=user, source="demo")
        creds[username] = {"password": password, "token": token}
    Account.objects.get(code="DEMO").members.add(User.objects.get(username="trader"))
    path = home / "credentials.json"
    path.write_text(json.dumps(creds, indent=2))
    path.chmod(0o600)
    _demo_fix_session(home)
    return True


def _demo_fix_session(home: Path) -> None:
    """The trader's FIX session, and its connection details in credentials.json."""
    trader = User.objects.filter(username="trader").first()
    path = home / "credentials.json"
    if trader is None or not path.exists():
        return
    session, _ = FixSession.objects.get_or_create(
        sender_comp_id="TRADER", target_comp_id=settings.FIX_COMP_ID, defaults={"user": trader}
    )
    creds = json.loads(path.read_text())
    fix = {
        "host": settings.FIX_HOST,
        "port": settings.FIX_PORT,
        "sender_comp_id": session.sender_comp_id,
        "target_comp_id": session.target_comp_id,
    }
    if "trader" in creds and creds["trader"].get("fix") != fix:
        creds["trader"]["fix"] = fix
        path.write_text(json.dumps(creds, indent=2))
        path.chmod(0o600)
