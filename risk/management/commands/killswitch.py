"""``manage.py killswitch`` (``oms kill``): engage, release or show trading states.

    oms kill --reason "runaway strategy"                       # global HALTED
    oms kill --scope venue --target sim-a --reason "venue incident"
    oms kill --scope account --target DEMO --symbol BTC/USDT --state REDUCING --reason ...
    oms kill --scope global --release --reason "incident closed"
    oms kill --show

The change is recorded as made from the console by ``--user`` (an OMS user with the
risk or admin role) or, without it, by the operating-system user running the command.
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from omsweb.roles import ADMIN, RISK, has_role
from orders.domain.errors import OmsError


class Command(BaseCommand):
    help = "Engage or release the kill switch (trading state) at a scope, or show states."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scope", default="global", choices=["global", "venue", "account", "symbol"]
        )
        parser.add_argument("--target", default=None, help="venue name, account code or symbol")
        parser.add_argument("--symbol", default=None, help="narrow an account scope to a symbol")
        parser.add_argument("--state", default="HALTED", choices=["ACTIVE", "REDUCING", "HALTED"])
        parser.add_argument("--release", action="store_true", help="same as --state ACTIVE")
        parser.add_argument("--reason", default=None, help="required for a change")
        parser.add_argument("--user", default=None, help="OMS user (risk/admin) to record")
        parser.add_argument("--show", action="store_true", help="print every scope's state")

    def handle(self, *args: Any, **opts: Any) -> None:
        from orders.models import Account, Instrument
        from risk import services
        from risk.models import Source, TradingState
        from venues.models import Venue

        if opts["show"]:
            rows = TradingState.objects.select_related("venue", "account", "instrument")
            for row in rows.order_by("scope", "id"):
                self.stdout.write(json.dumps(services.state_to_dict(row)))
            return
        if not opts["reason"]:
            raise CommandError("--reason is required: every change records why")
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None or not has_role(user, RISK, ADMIN):
                raise CommandError(f"{opts['user']!r} is not a user with the risk or admin role")
            actor = services.Actor.of(user, Source.CLI)
        else:
            actor = services.operator(f"console:{getpass.getuser()}")
        scope, target = opts["scope"], opts["target"]
        found: dict[str, Any] = {}
        lookups = {
            "venue": (Venue, "name", "venue"),
            "account": (Account, "code", "account"),
            "symbol": (Instrument, "symbol", "instrument"),
        }
        if scope in lookups:
            model, field, key = lookups[scope]
            if not target:
                raise CommandError(f"--scope {scope} needs --target")
            found[key] = model.objects.filter(**{field: target}).first()
            if found[key] is None:
                raise CommandError(f"unknown {scope} {target!r}")
        if opts["symbol"]:
            found["instrument"] = Instrument.objects.filter(symbol=opts["symbol"]).first()
            if found["instrument"] is None:
                raise CommandError(f"unknown symbol {opts['symbol']!r}")
        try:
            result = services.trading_state_set(
                actor=actor,
                scope=scope,
                state="ACTIVE" if opts["release"] else opts["state"],
                reason=opts["reason"],
                **found,
            )
        except OmsError as exc:
            raise CommandError(exc.message) from None
        row = result.trading_state
        self.stdout.write(json.dumps(services.state_to_dict(row)))
        if row.state == "HALTED":
            self.stdout.write("working orders in scope are being canceled (urgent queue)")
