# The routing app's first migration: no tables yet. Route decisions, venue scores and
# transaction-cost records follow in their own migrations.
from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations: list[migrations.operations.base.Operation] = []
