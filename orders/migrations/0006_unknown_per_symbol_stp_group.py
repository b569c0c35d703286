"""Unknown venue orders are unique per venue and symbol (Binance numbers orders per
symbol); accounts carry a self-trade prevention group (issue 12, item 7)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orders", "0005_recon_findings")]

    operations = [
        migrations.RemoveConstraint(model_name="unknownvenueorder", name="unknown_venue_order"),
        migrations.AddConstraint(
            model_name="unknownvenueorder",
            constraint=models.UniqueConstraint(
                fields=("venue", "symbol", "venue_order_id"), name="unknown_venue_order"
            ),
        ),
        migrations.AddField(
            model_name="account",
            name="stp_group",
            field=models.CharField(
                blank=True,
                default="",
                help_text="self-trade prevention group: accounts of one owner (empty: this account only)",
                max_length=32,
            ),
        ),
    ]
