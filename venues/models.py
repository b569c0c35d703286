"""Venues are rows: an admin adds or edits one without a deploy.

Credentials are never stored: a row names the environment variables that hold them,
and only the venue's own ``OMS_VENUE_<NAME>_KEY`` / ``_SECRET`` (``venues/credentials.py``).
A ``fix`` venue is reached over FIX 4.4 at ``fix_host``:``fix_port`` with its CompIDs; its
key and secret, when named, go in the Logon's Username (553) and Password (554).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from venues import credentials

env_name = RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "an environment variable name, e.g. BINANCE_KEY")


class Venue(models.Model):
    class Driver(models.TextChoices):
        SIM = "sim", "built-in simulated exchange"
        CCXT = "ccxt", "ccxt exchange"
        FIX = "fix", "FIX 4.4 venue"

    name = models.SlugField(max_length=32, unique=True)
    driver = models.CharField(max_length=8, choices=Driver.choices, default=Driver.CCXT)
    exchange_id = models.CharField(
        max_length=32,
        help_text="ccxt exchange id, e.g. binance (a fix venue: the REST market data's "
        "ccxt exchange id when base_url is set, else a label)",
    )
    base_url = models.URLField(
        blank=True,
        default="",
        help_text="optional API base URL override (a fix venue: optional REST market data "
        "and balances, e.g. the simulator's HTTP port)",
    )
    fix_host = models.CharField(
        max_length=253, blank=True, default="", help_text="fix venues: the venue's FIX host"
    )
    fix_port = models.PositiveIntegerField(
        null=True, blank=True, help_text="fix venues: the venue's FIX port"
    )
    sender_comp_id = models.CharField(
        max_length=32, blank=True, default="", help_text="fix venues: our SenderCompID (49)"
    )
    target_comp_id = models.CharField(
        max_length=32, blank=True, default="", help_text="fix venues: the venue's CompID (56)"
    )
    api_key_env = models.CharField(max_length=64, blank=True, default="", validators=[env_name])
    secret_env = models.CharField(max_length=64, blank=True, default="", validators=[env_name])
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="why the venue could not be enabled (set by validation, e.g. credentials)",
    )
    rate_limits = models.JSONField(
        default=dict,
        blank=True,
        help_text='token-bucket pools, e.g. {"weight": [5400, 60], "orders": [90, 10]} '
        "(capacity, window seconds); empty = Binance spot limits with a margin",
    )
    taker_fee = models.DecimalField(
        max_digits=8,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="taker fee rate, e.g. 0.001; filled by `oms marketdata` from the venue "
        "(ccxt's market data, the simulator's trade-fee endpoint); the consolidated book "
        "adjusts this venue's prices by it",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Field problems are errors naming the field (``venues/validation.py``), and so
        are credential variables not the venue's own (``venues/credentials.py``); missing
        credentials keep the venue disabled with the reason."""

        from venues.validation import field_problems

        super().clean()
        problems = field_problems(self)
        if problems:
            raise ValidationError(problems)
        self.clean_credentials()
        self.disable_without_credentials()

    def clean_credentials(self) -> None:
        """Credential variables: the venue's own only (``venues/credentials.py``)."""
        values = {field: getattr(self, field) for field in credentials.FIELDS}
        errors = credentials.credential_errors(self.name, values)
        if errors:
            raise ValidationError(errors)

    def disable_without_credentials(self) -> None:
        """Being enabled without its credentials: it stays disabled, with the reason."""
        from venues.validation import enabling_problem

        before = Venue.objects.filter(pk=self.pk).first() if self.pk else None
        why = enabling_problem(before, self)
        if why:
            self.enabled, self.disabled_reason = False, why
        elif self.enabled:
            self.disabled_reason = ""
