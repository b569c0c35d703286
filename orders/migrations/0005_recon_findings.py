"""Reconciliation findings: every difference between a venue's view and ours, with a
severity, until it is resolved (issue 12, item 3)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_audit_chain"),
        ("venues", "0002_venue_rate_limits"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReconFinding",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("STATUS_MISMATCH", "Status Mismatch"),
                            ("FILLED_MISMATCH", "Filled Mismatch"),
                            ("FILL_MISSING_IN_OMS", "Fill Missing In Oms"),
                            ("FILL_MISSING_AT_VENUE", "Fill Missing At Venue"),
                            ("FILL_MISMATCH", "Fill Mismatch"),
                            ("MISSING_AT_VENUE", "Missing At Venue"),
                            ("MASS_MISSING", "Mass Missing"),
                            ("UNKNOWN_AT_OMS", "Unknown At Oms"),
                        ],
                        max_length=24,
                    ),
                ),
                (
                    "severity",
                    models.CharField(
                        choices=[
                            ("INFO", "Info"),
                            ("WARNING", "Warning"),
                            ("CRITICAL", "Critical"),
                        ],
                        max_length=8,
                    ),
                ),
                (
                    "key",
                    models.CharField(
                        help_text="what it is about, e.g. symbol:order id", max_length=160
                    ),
                ),
                ("message", models.TextField()),
                ("detail", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("last_seen", models.DateTimeField(auto_now=True)),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                ("resolved_by", models.CharField(blank=True, default="", max_length=150)),
                ("resolution", models.TextField(blank=True, default="")),
                (
                    "order",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="recon_findings",
                        to="orders.order",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="findings",
                        to="orders.reconciliationrun",
                    ),
                ),
                (
                    "venue",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="venues.venue",
                    ),
                ),
            ],
            options={
                "ordering": ["-id"],
                "indexes": [
                    models.Index(
                        fields=["venue", "severity", "resolved_at"], name="recon_finding_venue_idx"
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("resolved_at__isnull", True)),
                        fields=("venue", "kind", "key"),
                        name="recon_finding_open_once",
                    )
                ],
            },
        ),
    ]
