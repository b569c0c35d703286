"""Fills and venue order ids are unique per venue and symbol (venues such as Binance
number trades and orders per symbol); venue refs carry their order's instrument."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_reconciliation"),
        ("venues", "0002_venue_rate_limits"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="fill", name="fill_unique_trade"),
        migrations.AddConstraint(
            model_name="fill",
            constraint=models.UniqueConstraint(
                fields=("venue", "instrument", "venue_trade_id"), name="fill_unique_trade"
            ),
        ),
        migrations.AddField(
            model_name="venueorderref",
            name="instrument",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="orders.instrument",
            ),
        ),
        migrations.RunSQL(
            "UPDATE orders_venueorderref r SET instrument_id = o.instrument_id "
            "FROM orders_order o WHERE o.id = r.order_id",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="venueorderref",
            name="instrument",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="orders.instrument",
            ),
        ),
        migrations.RemoveConstraint(model_name="venueorderref", name="venue_order_ref"),
        migrations.AddConstraint(
            model_name="venueorderref",
            constraint=models.UniqueConstraint(
                fields=("venue", "instrument", "venue_order_id"), name="venue_order_ref"
            ),
        ),
    ]
