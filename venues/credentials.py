"""Where a venue's API key and secret come from: two variables of its own, nothing else.

A venue row names the environment variables that hold its credentials
(``api_key_env``, ``secret_env``); the secrets are never stored. Those names are fixed
by the venue's name: ``OMS_VENUE_<NAME>_KEY`` and ``OMS_VENUE_<NAME>_SECRET`` (NAME is
the venue name upper-cased, every other character than A-Z and 0-9 made ``_``: venue
``sim-a`` reads ``OMS_VENUE_SIM_A_KEY``), or empty (no credentials; a sim venue then
uses the simulator's default key). Any other name is refused where a row is written
(API, admin) and again where it is read (``venues/registry.py``), so venue configuration
cannot reach the rest of the OMS's environment: an admin who names ``SIMEX_API_SECRET``
or another venue's secret, and points the base URL at a listener, gets a 400, not the
secret.

Django-free (the registry uses it too).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

PREFIX = "OMS_VENUE_"
# row field -> the variable's suffix
FIELDS = {"api_key_env": "KEY", "secret_env": "SECRET"}


class CredentialNameError(ValueError):
    """A row names a variable its venue may not read."""


def env_name(venue_name: str, field: str) -> str:
    """The one variable ``field`` of venue ``venue_name`` may name."""
    stem = re.sub(r"[^A-Z0-9]", "_", venue_name.upper())
    return f"{PREFIX}{stem}_{FIELDS[field]}"


def credential_errors(venue_name: str, values: Mapping[str, object]) -> dict[str, str]:
    """``{field: message}`` for each credential field of ``values`` naming a variable
    venue ``venue_name`` may not read (empty when all is well)."""
    errors = {}
    for field in FIELDS:
        value = str(values.get(field) or "").strip()
        allowed = env_name(venue_name, field)
        if value and value != allowed:
            errors[field] = (
                f"{value} is not allowed: venue {venue_name!r} takes its credentials only "
                f"from {allowed} (or leave it empty)"
            )
    return errors


def read(venue_name: str, field: str, var: str | None) -> str | None:
    """The value of ``var`` named in ``field`` of venue ``venue_name``, or None when no
    variable is named. Raises ``CredentialNameError`` for a name the venue may not read
    (a row written before this rule, or past the API and admin) and ``KeyError`` when
    the allowed variable is not set."""
    var = (var or "").strip()
    if not var:
        return None
    allowed = env_name(venue_name, field)
    if var != allowed:
        raise CredentialNameError(
            f"venue {venue_name}: {field} names {var}; credentials come only from {allowed}"
        )
    return os.environ[var]
