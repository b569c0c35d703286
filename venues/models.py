"""Venues are rows: an admin adds or edits one without a deploy.

Credentials are never stored: a row names the environment variables that hold them.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

env_name = RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "an environment variable name, e.g. BINANCE_KEY")


class Venue(models.Model):
    class Driver(models.TextChoices):
        SIM = "sim", "built-in simulated exchange"
        CCXT = "ccxt", "ccxt exchange"

    name = models.SlugField(max_length=32, unique=True)
    driver = models.CharField(max_length=8, choices=Driver.choices, default=Driver.CCXT)
    exchange_id = models.CharField(max_length=32, help_text="ccxt exchange id, e.g. binance")
    base_url = models.URLField(blank=True, default="", help_text="optional API base URL override")
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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Field problems are errors naming the field; missing credentials keep the
        venue disabled with the reason (``venues/validation.py``)."""
        from django.core.exceptions import ValidationError

        from venues.validation import field_problems

        problems = field_problems(self)
        if problems:
            raise ValidationError(problems)
        self.disable_without_credentials()

    def disable_without_credentials(self) -> None:
        """Being enabled without its credentials: it stays disabled, with the reason."""
        from venues.validation import enabling_problem

        before = Venue.objects.filter(pk=self.pk).first() if self.pk else None
        why = enabling_problem(before, self)
        if why:
            self.enabled, self.disabled_reason = False, why
        elif self.enabled:
            self.disabled_reason = ""
