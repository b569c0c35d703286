# TCA and venue-score records (routing/models.py). Numbered 0003 after branch parent's
# 0002 (route decisions); until that merges it follows 0001 (re-point it at the merge).

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_client_order_id_per_account"),
        ("routing", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="OrderTca",
            fields=[
                (
                    "order",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="tca",
                        serialize=False,
                        to="orders.order",
                    ),
                ),
                ("symbol", models.CharField(max_length=32)),
                ("side", models.CharField(max_length=4)),
                (
                    "venue",
                    models.CharField(
                        blank=True, default="", help_text="empty: a parent", max_length=64
                    ),
                ),
                (
                    "arrival_mid",
                    models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True),
                ),
                (
                    "arrival_at",
                    models.DateTimeField(help_text="when the order was accepted by the OMS"),
                ),
                (
                    "filled_quantity",
                    models.DecimalField(decimal_places=12, default=Decimal("0"), max_digits=30),
                ),
                (
                    "filled_notional",
                    models.DecimalField(decimal_places=16, default=Decimal("0"), max_digits=40),
                ),
                (
                    "average_price",
                    models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True),
                ),
                (
                    "slippage_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                (
                    "effective_spread_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                (
                    "fees",
                    models.DecimalField(decimal_places=12, default=Decimal("0"), max_digits=30),
                ),
                (
                    "fees_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                (
                    "markout_1s_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                (
                    "markout_5s_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                (
                    "markout_60s_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="orders.account",
                    ),
                ),
            ],
            options={
                "ordering": ["-arrival_at"],
            },
        ),
        migrations.CreateModel(
            name="FillTca",
            fields=[
                (
                    "fill",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="tca",
                        serialize=False,
                        to="orders.fill",
                    ),
                ),
                (
                    "routed",
                    models.BooleanField(
                        default=False, help_text="a fill of a router's child order"
                    ),
                ),
                ("venue", models.CharField(max_length=64)),
                ("symbol", models.CharField(max_length=32)),
                ("side", models.CharField(max_length=4)),
                ("quantity", models.DecimalField(decimal_places=12, max_digits=30)),
                ("price", models.DecimalField(decimal_places=12, max_digits=30)),
                (
                    "fee_quote",
                    models.DecimalField(decimal_places=12, default=Decimal("0"), max_digits=30),
                ),
                ("executed_at", models.DateTimeField()),
                (
                    "mid_at_fill",
                    models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True),
                ),
                (
                    "mid_1s",
                    models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True),
                ),
                (
                    "mid_5s",
                    models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True),
                ),
                (
                    "mid_60s",
                    models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True),
                ),
                (
                    "tca_order",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="fills",
                        to="routing.ordertca",
                    ),
                ),
            ],
            options={
                "ordering": ["executed_at"],
            },
        ),
        migrations.CreateModel(
            name="RoutedChild",
            fields=[
                (
                    "order",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="routed_child",
                        serialize=False,
                        to="orders.order",
                    ),
                ),
                ("venue", models.CharField(max_length=64)),
                ("symbol", models.CharField(max_length=32)),
                ("quantity", models.DecimalField(decimal_places=12, max_digits=30)),
                (
                    "filled_quantity",
                    models.DecimalField(decimal_places=12, default=Decimal("0"), max_digits=30),
                ),
                (
                    "planned_price",
                    models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True),
                ),
                (
                    "average_price",
                    models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True),
                ),
                ("rejected", models.BooleanField(default=False)),
                ("ack_latency_ms", models.FloatField(blank=True, null=True)),
                ("finished_at", models.DateTimeField()),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["venue", "symbol", "finished_at"], name="tca_child_venue_idx"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="VenueScore",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("venue", models.CharField(max_length=64)),
                ("symbol", models.CharField(max_length=32)),
                ("children", models.PositiveIntegerField(default=0)),
                ("fills", models.PositiveIntegerField(default=0)),
                (
                    "fill_rate",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=10, null=True),
                ),
                (
                    "reject_rate",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=10, null=True),
                ),
                ("ack_latency_p50_ms", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "slippage_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                (
                    "markout_1s_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                (
                    "markout_5s_bp",
                    models.DecimalField(blank=True, decimal_places=4, max_digits=24, null=True),
                ),
                (
                    "score",
                    models.DecimalField(decimal_places=4, default=Decimal("1"), max_digits=10),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["symbol", "venue"],
                "constraints": [
                    models.UniqueConstraint(fields=("venue", "symbol"), name="venue_score_once")
                ],
            },
        ),
        migrations.AddIndex(
            model_name="ordertca",
            index=models.Index(fields=["arrival_at"], name="tca_order_arrival_idx"),
        ),
        migrations.AddIndex(
            model_name="ordertca",
            index=models.Index(fields=["account", "arrival_at"], name="tca_order_account_idx"),
        ),
        migrations.AddIndex(
            model_name="filltca",
            index=models.Index(
                fields=["venue", "symbol", "executed_at"], name="tca_fill_venue_idx"
            ),
        ),
    ]
