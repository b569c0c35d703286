"""Venue credentials come only from the venue's own OMS_VENUE_<NAME>_KEY / _SECRET
(venues/credentials.py): rows naming any other variable are pointed at those. The
operator sets them (the demo's `oms` commands do, from OMS_HOME/simex.json)."""

import re

from django.db import migrations

SUFFIX = {"api_key_env": "KEY", "secret_env": "SECRET"}


def own_variables(apps, schema_editor):
    Venue = apps.get_model("venues", "Venue")
    for venue in Venue.objects.all():
        stem = re.sub(r"[^A-Z0-9]", "_", venue.name.upper())
        changed = []
        for field, suffix in SUFFIX.items():
            allowed = f"OMS_VENUE_{stem}_{suffix}"
            if getattr(venue, field) and getattr(venue, field) != allowed:
                setattr(venue, field, allowed)
                changed.append(field)
        if changed:
            venue.save(update_fields=changed)


class Migration(migrations.Migration):
    dependencies = [("venues", "0003_venue_taker_fee")]

    operations = [migrations.RunPython(own_variables, migrations.RunPython.noop)]
