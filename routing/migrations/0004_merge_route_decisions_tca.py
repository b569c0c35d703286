# Route decisions (0002) and the TCA records (0003) were made side by side; one leaf again.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0002_route_decisions"),
        ("routing", "0003_tca"),
    ]
    operations: list[migrations.operations.base.Operation] = []
