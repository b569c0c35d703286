"""Risk controls: limits, trading states (the kill switch), the restricted list, and
the audit trail of every change to them.

Rows change only through ``risk/services.py``, which records who, when and why in
``RiskLimitChange`` / ``TradingStateChange``. ``AccountRisk`` is the per-account row the
pre-trade check locks (``SELECT ... FOR UPDATE``) so that two concurrent orders of one
account are evaluated one after the other (see docs/RISK.md).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from risk.checks import LimitKind, TradingStateValue

VALUE = {"max_digits": 30, "decimal_places": 12}


class State(models.TextChoices):
    ACTIVE = TradingStateValue.ACTIVE.value
    REDUCING = TradingStateValue.REDUCING.value
    HALTED = TradingStateValue.HALTED.value


class BreachAction(models.TextChoices):
    NONE = "", "none"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class LimitScope(models.TextChoices):
    GLOBAL = "global"
    ACCOUNT = "account"
    SYMBOL = "symbol"
    ACCOUNT_SYMBOL = "account_symbol"


class StateScope(models.TextChoices):
    GLOBAL = "global"
    VENUE = "venue"
    ACCOUNT = "account"  # with an instrument: that account in that symbol only
    SYMBOL = "symbol"


class Source(models.TextChoices):
    API = "api"
    ADMIN = "admin"
    CLI = "cli"
    AUTO = "auto", "post-trade (automatic)"
    SYSTEM = "system"


class RiskLimit(models.Model):
    """One limit of one kind at one scope; the most specific applicable row wins."""

    Kind = models.TextChoices("Kind", [(k.value, k.value) for k in LimitKind])

    account = models.ForeignKey(
        "orders.Account", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    instrument = models.ForeignKey(
        "orders.Instrument", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    value = models.DecimalField(**VALUE)
    breach_action = models.CharField(
        max_length=8,
        choices=BreachAction.choices,
        blank=True,
        default="",
        help_text="max_position / max_daily_loss: what a breach after a fill does "
        "(REDUCING when left empty)",
    )
    reason = models.TextField(help_text="why the limit has this value (the last change)")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_by_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "account_id", "instrument_id"]
        constraints = [
            models.CheckConstraint(condition=Q(value__gte=0), name="risk_limit_value_gte_0"),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(account__isnull=True, instrument__isnull=True),
                name="risk_limit_global_unique",
            ),
            models.UniqueConstraint(
                fields=["kind", "account"],
                condition=Q(account__isnull=False, instrument__isnull=True),
                name="risk_limit_account_unique",
            ),
            models.UniqueConstraint(
                fields=["kind", "instrument"],
                condition=Q(account__isnull=True, instrument__isnull=False),
                name="risk_limit_symbol_unique",
            ),
            models.UniqueConstraint(
                fields=["kind", "account", "instrument"],
                condition=Q(account__isnull=False, instrument__isnull=False),
                name="risk_limit_account_symbol_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.scope_label} = {self.value.normalize():f}"

    @property
    def scope(self) -> str:
        if self.account_id and self.instrument_id:
            return LimitScope.ACCOUNT_SYMBOL
        if self.account_id:
            return LimitScope.ACCOUNT
        if self.instrument_id:
            return LimitScope.SYMBOL
        return LimitScope.GLOBAL

    @property
    def scope_label(self) -> str:
        parts = []
        if self.account_id:
            parts.append(str(self.account))
        if self.instrument_id:
            parts.append(str(self.instrument))
        return " ".join(parts) or "global"


class RiskLimitChange(models.Model):
    """Audit: every creation, change and removal of a limit (append-only)."""

    limit = models.ForeignKey(
        RiskLimit, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes"
    )
    action = models.CharField(max_length=8)  # created | updated | deleted
    kind = models.CharField(max_length=32)
    scope = models.CharField(max_length=16)
    account_code = models.CharField(max_length=32, blank=True, default="")
    symbol = models.CharField(max_length=32, blank=True, default="")
    old_value = models.DecimalField(**VALUE, null=True, blank=True)
    new_value = models.DecimalField(**VALUE, null=True, blank=True)
    old_breach_action = models.CharField(max_length=8, blank=True, default="")
    new_breach_action = models.CharField(max_length=8, blank=True, default="")
    reason = models.TextField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_by_name = models.CharField(max_length=150)
    source = models.CharField(max_length=8, choices=Source.choices)
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.changed_at:%Y-%m-%d %H:%M:%S} {self.changed_by_name} {self.action} {self.kind}"
        )


class TradingState(models.Model):
    """The trading state of one scope. No row (or ACTIVE) means trading is allowed."""

    scope = models.CharField(max_length=8, choices=StateScope.choices)
    venue = models.ForeignKey(
        "venues.Venue", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    account = models.ForeignKey(
        "orders.Account", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    instrument = models.ForeignKey(
        "orders.Instrument", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    reason = models.TextField(blank=True, default="")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_by_name = models.CharField(max_length=150, blank=True, default="")
    # the role that set it: a trader may never release what risk or admin set
    changed_by_role = models.CharField(max_length=8, blank=True, default="")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(
                        scope="global",
                        venue__isnull=True,
                        account__isnull=True,
                        instrument__isnull=True,
                    )
                    | Q(
                        scope="venue",
                        venue__isnull=False,
                        account__isnull=True,
                        instrument__isnull=True,
                    )
                    | Q(scope="account", venue__isnull=True, account__isnull=False)
                    | Q(
                        scope="symbol",
                        venue__isnull=True,
                        account__isnull=True,
                        instrument__isnull=False,
                    )
                ),  # fmt: skip
                name="trading_state_scope_consistent",
            ),
            models.UniqueConstraint(
                fields=["scope"], condition=Q(scope="global"), name="trading_state_global_unique"
            ),
            models.UniqueConstraint(
                fields=["venue"], condition=Q(scope="venue"), name="trading_state_venue_unique"
            ),
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(scope="account", instrument__isnull=True),
                name="trading_state_account_unique",
            ),
            models.UniqueConstraint(
                fields=["account", "instrument"],
                condition=Q(scope="account", instrument__isnull=False),
                name="trading_state_account_symbol_unique",
            ),
            models.UniqueConstraint(
                fields=["instrument"],
                condition=Q(scope="symbol"),
                name="trading_state_symbol_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.state}"

    @property
    def target(self) -> str | None:
        if self.scope == StateScope.VENUE:
            return self.venue.name if self.venue else None
        if self.scope == StateScope.ACCOUNT:
            return self.account.code if self.account else None
        if self.scope == StateScope.SYMBOL:
            return self.instrument.symbol if self.instrument else None
        return None

    @property
    def symbol(self) -> str | None:
        """The symbol an account-scope state is narrowed to, if any."""
        if self.scope == StateScope.ACCOUNT and self.instrument_id:
            return self.instrument.symbol if self.instrument else None
        return None

    @property
    def label(self) -> str:
        if self.scope == StateScope.GLOBAL:
            return "global"
        text = f"{self.scope} {self.target}"
        if self.symbol:
            text += f" {self.symbol}"
        return text


class TradingStateChange(models.Model):
    """Audit: every change of a trading state (append-only; ``detail`` carries what the
    kill-switch sweep did)."""

    trading_state = models.ForeignKey(
        TradingState, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes"
    )
    scope = models.CharField(max_length=8)
    target = models.CharField(max_length=64, blank=True, default="")
    symbol = models.CharField(max_length=32, blank=True, default="")
    old_state = models.CharField(max_length=8)
    new_state = models.CharField(max_length=8)
    reason = models.TextField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_by_name = models.CharField(max_length=150)
    changed_by_role = models.CharField(max_length=8, blank=True, default="")
    source = models.CharField(max_length=8, choices=Source.choices)
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        where = " ".join(filter(None, [self.scope, self.target, self.symbol]))
        return f"{self.changed_at:%Y-%m-%d %H:%M:%S} {where}: {self.old_state} -> {self.new_state}"


class Restriction(models.Model):
    """The restricted list: an instrument no one (or one account) may trade."""

    instrument = models.ForeignKey("orders.Instrument", on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(
        "orders.Account",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="empty: every account",
    )
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instrument_id", "account_id"]

    def __str__(self) -> str:
        return f"{self.instrument} restricted for {self.account or 'all accounts'}"


class AccountRisk(models.Model):
    """Per-account risk row: the pre-trade lock, and where the trading day's P&L began."""

    account = models.OneToOneField(
        "orders.Account", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    pnl_day = models.DateField(null=True, blank=True)
    day_start_pnl = models.DecimalField(max_digits=40, decimal_places=12, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"risk {self.account_id}"
