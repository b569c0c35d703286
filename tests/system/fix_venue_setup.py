"""The FIX venue row of tests/system/test_fix_venue.py in its stack's database, loaded in
a subprocess with the stack's environment: ``python -m tests.system.fix_venue_setup
REST_PORT FIX_PORT`` adds ``sim-fix`` (driver fix; market data from the simulator's REST
port; orders over its FIX port)."""

from __future__ import annotations

import sys


def add_fix_venue(rest_port: int, fix_port: int) -> int:
    from venues.credentials import env_name
    from venues.models import Venue

    name = "sim-fix"
    venue, _ = Venue.objects.update_or_create(name=name, defaults=dict(
        driver=Venue.Driver.FIX, exchange_id="binance",
        base_url=f"http://127.0.0.1:{rest_port}", fix_host="127.0.0.1", fix_port=fix_port,
        sender_comp_id="OMS", target_comp_id="SIMEX", enabled=True,
        api_key_env=env_name(name, "api_key_env"), secret_env=env_name(name, "secret_env"),
        rate_limits={"weight": [10_000_000, 60], "orders": [10_000_000, 10]},
    ))  # fmt: skip
    return venue.pk


if __name__ == "__main__":
    import django

    django.setup()
    print(add_fix_venue(int(sys.argv[1]), int(sys.argv[2])))
