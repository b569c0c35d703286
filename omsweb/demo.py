"""The demo data set ``oms up`` loads once: accounts, instruments, the two simulated
venues, and the users admin, risk and trader with random passwords and API tokens."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.db import transaction

from omsweb import api_tokens
from omsweb.roles import ADMIN, RISK, TRADER
from orders.models import Account, Instrument
from venues.models import Venue

INSTRUMENTS = [
    # symbol, base, quote, tick, lot, min notional
    ("BTC/USDT", "BTC", "USDT", "0.01", "0.00001", "5"),
    ("ETH/USDT", "ETH", "USDT", "0.01", "0.0001", "5"),
]
ACCOUNTS = [("DEMO", "Demo strategy account"), ("HEDGE", "Hedging account")]
SIM_PORTS = {"sim-a": 8101, "sim-b": 8102}


def ensure_reference_data() -> None:
    for code, name in ACCOUNTS:
        Account.objects.get_or_create(code=code, defaults={"name": name})
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
                "api_key_env": "SIMEX_API_KEY",
                "secret_env": "SIMEX_API_SECRET",
            },
        )
    for role in (TRADER, RISK, ADMIN):
        Group.objects.get_or_create(name=role)
    from risk.defaults import ensure_default_limits  # fail closed: no limits, no trading

    ensure_default_limits()


@transaction.atomic
def load_demo(home: Path) -> bool:
    """Create the demo set once. Returns True when users were created (first start)."""
    ensure_reference_data()
    if User.objects.filter(username="admin").exists():
        return False
    creds: dict[str, dict[str, str]] = {}
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
    return True
