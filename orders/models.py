"""Accounts, instruments, orders, their events and fills, positions.

Orders, their events, fills, positions and venue references are written only by
``orders/writer.py``, for the execution engine (``orders/engine.py``); nothing saves
them from a view, a task or a listener. The lifecycle rules live in
``orders/domain/lifecycle.py``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.chain import GENESIS
from orders.domain.lifecycle import TERMINAL_STATUSES, WORKING_STATUSES, OrderStatus

QTY = {"max_digits": 30, "decimal_places": 12}
ZERO = Decimal(0)


class Account(models.Model):
    code = models.SlugField(max_length=32, unique=True, help_text="e.g. DEMO")
    name = models.CharField(max_length=100, blank=True, default="")
    # Self-trade prevention: the accounts of one owner share a group, and an order that
    # would cross a resting order of any account in its group is denied (risk/checks.py).
    stp_group = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="self-trade prevention group: accounts of one owner (empty: this account only)",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="accounts")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Instrument(models.Model):
    symbol = models.CharField(max_length=32, unique=True, help_text="unified symbol, BASE/QUOTE")
    base = models.CharField(max_length=16)
    quote = models.CharField(max_length=16)
    tick_size = models.DecimalField(**QTY)
    lot_size = models.DecimalField(**QTY)
    min_notional = models.DecimalField(**QTY, default=ZERO)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


class Side(models.TextChoices):
    BUY = "buy"
    SELL = "sell"


class OrderType(models.TextChoices):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(models.TextChoices):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class Order(models.Model):
    Status = models.TextChoices("Status", [(s.value, s.value) for s in OrderStatus])

    # The client's id, unique per account (another account may use the same id).
    client_order_id = models.CharField(max_length=32)
    # The id the venue knows the order by now, unique across all accounts by construction
    # (``engine.new_client_order_id()``, never the client's id): that id, then one per
    # amend (``<id>/<n>``) because a cancel-replace needs a fresh id.
    venue_client_order_id = models.CharField(max_length=40, unique=True, null=True, blank=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="orders")
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=6, choices=OrderType.choices)
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**QTY, null=True, blank=True)
    time_in_force = models.CharField(
        max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC
    )
    venue = models.ForeignKey(
        "venues.Venue", on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    venue_order_id = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default="PENDING_NEW")
    prior_status = models.CharField(max_length=16, blank=True, default="")
    filled_quantity = models.DecimalField(**QTY, default=ZERO)
    filled_notional = models.DecimalField(max_digits=40, decimal_places=16, default=ZERO)
    average_price = models.DecimalField(**QTY, null=True, blank=True)
    pending_quantity = models.DecimalField(**QTY, null=True, blank=True)
    pending_price = models.DecimalField(**QTY, null=True, blank=True)
    amend_count = models.PositiveIntegerField(default=0)
    reason = models.TextField(blank=True, default="")
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True
    )
    # Fingerprint of the request that created the order: a replay with the same client
    # order id must carry the same fields, else 409.
    request_fingerprint = models.CharField(max_length=64)
    event_sequence = models.PositiveIntegerField(default=0)
    # The hash of the order's last event: the head of its chain (orders/chain.py).
    event_hash = models.CharField(max_length=64, default=GENESIS)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["account", "status"]),
            models.Index(fields=["venue", "venue_order_id"]),
            models.Index(
                fields=["status", "updated_at"],
                name="order_working_idx",
                condition=~models.Q(status__in=sorted(s.value for s in TERMINAL_STATUSES)),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_order_id"], name="order_client_id_per_account"
            ),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="order_qty_positive"),
            models.CheckConstraint(
                condition=models.Q(filled_quantity__gte=0)
                & models.Q(filled_quantity__lte=models.F("quantity")),
                name="order_filled_within_quantity",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.client_order_id} {self.side} {self.quantity.normalize():f} {self.instrument_id}"
        )

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def venue_base_id(self) -> str:
        """The venue-side client id without its amend suffix (``<id>/<n>``)."""
        return (self.venue_client_order_id or self.client_order_id).split("/", 1)[0]

    @property
    def leaves_quantity(self) -> Decimal:
        if self.status in {s.value for s in TERMINAL_STATUSES}:
            return ZERO
        return self.quantity - self.filled_quantity

    @property
    def is_working(self) -> bool:
        return self.status in {s.value for s in WORKING_STATUSES}


class OrderEvent(models.Model):
    """Append-only history of an order: one row per change, in sequence."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    sequence = models.PositiveIntegerField()
    kind = models.CharField(max_length=32)
    source = models.CharField(max_length=16)  # api | worker | venue | recon | risk | admin
    status = models.CharField(max_length=16)  # status after the event
    payload = models.JSONField(default=dict)
    late = models.BooleanField(default=False, help_text="correction after a terminal state")
    # Set when the event is made, not when it is saved: its hash covers it.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The order's hash chain (orders/chain.py): the previous event's hash, and this one's.
    prev_hash = models.CharField(max_length=64, default="")
    hash = models.CharField(max_length=64, default="")

    class Meta:
        ordering = ["order_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["order", "sequence"], name="order_event_sequence")
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.sequence} {self.kind}"


class Fill(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    venue = models.ForeignKey("venues.Venue", on_delete=models.PROTECT, related_name="fills")
    venue_trade_id = models.CharField(max_length=64)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="fills")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="fills")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**QTY)
    fee = models.DecimalField(**QTY, default=ZERO)
    fee_currency = models.CharField(max_length=16, blank=True, default="")
    is_maker = models.BooleanField(null=True)
    late = models.BooleanField(default=False)
    executed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # venues such as Binance number trades per symbol
            models.UniqueConstraint(
                fields=["venue", "instrument", "venue_trade_id"], name="fill_unique_trade"
            )
        ]

    def __str__(self) -> str:
        q, p = self.quantity.normalize(), self.price.normalize()
        return f"{self.venue_id}:{self.venue_trade_id} {self.side} {q:f}@{p:f}"


class Position(models.Model):
    """Net position of an account in an instrument across venues, in quote currency P&L."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="positions")
    quantity = models.DecimalField(**QTY, default=ZERO)  # signed: > 0 long, < 0 short
    average_price = models.DecimalField(**QTY, null=True, blank=True)
    realized_pnl = models.DecimalField(**QTY, default=ZERO)
    fees = models.DecimalField(**QTY, default=ZERO)  # in quote currency
    mark_price = models.DecimalField(**QTY, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id", "instrument_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument"], name="position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.instrument_id} {self.quantity.normalize():f}"

    @property
    def unrealized_pnl(self) -> Decimal | None:
        if self.mark_price is None or self.average_price is None or not self.quantity:
            return ZERO if not self.quantity else None
        return (self.mark_price - self.average_price) * self.quantity


class VenueOrderRef(models.Model):
    """Every id a venue has given an order (one per amend with cancel-replace), so a
    late trade of an older venue order still finds its OMS order."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="venue_refs")
    venue = models.ForeignKey("venues.Venue", on_delete=models.PROTECT, related_name="+")
    # the order's instrument: venues such as Binance number orders per symbol
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    venue_order_id = models.CharField(max_length=64)
    venue_client_order_id = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["venue", "instrument", "venue_order_id"], name="venue_order_ref"
            )
        ]

    def __str__(self) -> str:
        return f"{self.venue_id}:{self.venue_order_id} -> {self.order_id}"


class ReconciliationRun(models.Model):
    """One comparison of a venue's view with ours: what was found and what was fixed."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        STARTUP = "startup"
        RECOVERY = "recovery"  # the venue came back (breaker closed)
        MANUAL = "manual"

    venue = models.ForeignKey("venues.Venue", on_delete=models.CASCADE, related_name="recon_runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=16, default="running")  # running | ok | failed
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    found = models.JSONField(default=dict)
    fixed = models.JSONField(default=dict)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.venue_id} {self.trigger} {self.started_at:%Y-%m-%d %H:%M:%S}"


class UnknownVenueOrder(models.Model):
    """An order working at a venue that the OMS did not place (or cannot match):
    surfaced by reconciliation for an operator to cancel or adopt."""

    class State(models.TextChoices):
        OPEN = "OPEN"  # still working at the venue
        GONE = "GONE"  # no longer open at the venue
        CANCELED = "CANCELED"  # canceled by an operator through the OMS
        ADOPTED = "ADOPTED"  # taken into the OMS as an order

    venue = models.ForeignKey("venues.Venue", on_delete=models.CASCADE, related_name="unknown")
    venue_order_id = models.CharField(max_length=64)
    client_order_id = models.CharField(max_length=64, blank=True, default="")
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    type = models.CharField(max_length=16)
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**QTY, null=True, blank=True)
    filled_quantity = models.DecimalField(**QTY, default=ZERO)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    adopted_order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            # venues such as Binance number orders per symbol
            models.UniqueConstraint(
                fields=["venue", "symbol", "venue_order_id"], name="unknown_venue_order"
            )
        ]

    def __str__(self) -> str:
        q = self.quantity.normalize()
        return f"{self.venue_id}:{self.venue_order_id} {self.side} {q:f} {self.symbol}"


class ReconFinding(models.Model):
    """One difference between a venue's view and ours, found by a reconciliation run.

    A difference seen again by a later run updates the open finding of the same
    (venue, kind, key) instead of adding another. A finding the run fixed itself (a
    missed fill applied, a vanished order closed) is stored resolved, by ``recon``; the
    others wait for an operator (resolve, or confirm a mass-missing alert)."""

    class Kind(models.TextChoices):
        STATUS_MISMATCH = "STATUS_MISMATCH"  # the venue's status disagrees with ours
        FILLED_MISMATCH = "FILLED_MISMATCH"  # the venue's filled quantity disagrees
        FILL_MISSING_IN_OMS = "FILL_MISSING_IN_OMS"  # a venue trade we had not booked
        FILL_MISSING_AT_VENUE = "FILL_MISSING_AT_VENUE"  # a fill of ours the venue lacks
        FILL_MISMATCH = "FILL_MISMATCH"  # same trade id, other quantity or price
        MISSING_AT_VENUE = "MISSING_AT_VENUE"  # a working order the venue no longer has
        MASS_MISSING = "MASS_MISSING"  # many at once: venue REDUCING, operator confirms
        UNKNOWN_AT_OMS = "UNKNOWN_AT_OMS"  # open at the venue, not placed by the OMS

    class Severity(models.TextChoices):
        INFO = "INFO"  # found and fixed by the run
        WARNING = "WARNING"  # needs a look
        CRITICAL = "CRITICAL"  # money or risk at stake: act now

    run = models.ForeignKey(
        ReconciliationRun, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="findings",
    )  # fmt: skip
    venue = models.ForeignKey("venues.Venue", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="recon_findings"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    key = models.CharField(max_length=160, help_text="what it is about, e.g. symbol:order id")
    message = models.TextField()
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    resolution = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["venue", "kind", "key"],
                condition=models.Q(resolved_at__isnull=True),
                name="recon_finding_open_once",
            )
        ]
        indexes = [
            models.Index(
                fields=["venue", "severity", "resolved_at"], name="recon_finding_venue_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.venue_id} {self.severity} {self.kind} {self.key}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
