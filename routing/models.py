"""Venue scores and transaction-cost analysis records (``routing/tca.py`` and
``routing/scores.py`` write them, from the execution engine's events and the markout
sweep; nothing else does).

* ``OrderTca``: one per top-level order (a parent, or an order sent straight to a
  venue): the consolidated arrival mid and the order's figures, recomputed from its fills;
* ``FillTca``: one per fill of such an order or of its children: the mid when it
  happened and at +1 s, +5 s and +60 s (sampled later by the sweep);
* ``RoutedChild``: one per child order the router sent, once it is done: what a venue's
  score is learned from;
* ``VenueScore``: the quality figures and score of a venue for a symbol over its window;
* ``RouteDecision``: one per round of routing of a parent (``routing/parents.py``): what
  it was asked to route, the inputs that mattered (book ages and best prices per venue,
  venue conditions), the children it sent and, for every venue considered, why it got
  what it got (``routing.sor.VenueDecision``'s JSON). Written once, in the parent's
  transaction, never changed.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

PRICE = {"max_digits": 30, "decimal_places": 12}
BPS = {"max_digits": 24, "decimal_places": 4}
ZERO = Decimal(0)


class OrderTca(models.Model):
    order = models.OneToOneField(
        "orders.Order", on_delete=models.CASCADE, primary_key=True, related_name="tca"
    )
    account = models.ForeignKey("orders.Account", on_delete=models.CASCADE, related_name="+")
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    venue = models.CharField(max_length=64, blank=True, default="", help_text="empty: a parent")
    arrival_mid = models.DecimalField(**PRICE, null=True, blank=True)
    arrival_at = models.DateTimeField(help_text="when the order was accepted by the OMS")
    filled_quantity = models.DecimalField(**PRICE, default=ZERO)
    filled_notional = models.DecimalField(max_digits=40, decimal_places=16, default=ZERO)
    average_price = models.DecimalField(**PRICE, null=True, blank=True)
    slippage_bp = models.DecimalField(**BPS, null=True, blank=True)
    effective_spread_bp = models.DecimalField(**BPS, null=True, blank=True)
    fees = models.DecimalField(**PRICE, default=ZERO)
    fees_bp = models.DecimalField(**BPS, null=True, blank=True)
    markout_1s_bp = models.DecimalField(**BPS, null=True, blank=True)
    markout_5s_bp = models.DecimalField(**BPS, null=True, blank=True)
    markout_60s_bp = models.DecimalField(**BPS, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-arrival_at"]
        indexes = [
            models.Index(fields=["arrival_at"], name="tca_order_arrival_idx"),
            models.Index(fields=["account", "arrival_at"], name="tca_order_account_idx"),
        ]

    def __str__(self) -> str:
        return f"TCA {self.order_id} {self.side} {self.symbol}"


class FillTca(models.Model):
    fill = models.OneToOneField(
        "orders.Fill", on_delete=models.CASCADE, primary_key=True, related_name="tca"
    )
    tca_order = models.ForeignKey(OrderTca, on_delete=models.CASCADE, related_name="fills")
    routed = models.BooleanField(default=False, help_text="a fill of a router's child order")
    venue = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(**PRICE)
    price = models.DecimalField(**PRICE)
    fee_quote = models.DecimalField(**PRICE, default=ZERO)
    executed_at = models.DateTimeField()
    mid_at_fill = models.DecimalField(**PRICE, null=True, blank=True)
    mid_1s = models.DecimalField(**PRICE, null=True, blank=True)
    mid_5s = models.DecimalField(**PRICE, null=True, blank=True)
    mid_60s = models.DecimalField(**PRICE, null=True, blank=True)

    class Meta:
        ordering = ["executed_at"]
        indexes = [
            models.Index(fields=["venue", "symbol", "executed_at"], name="tca_fill_venue_idx"),
        ]

    def __str__(self) -> str:
        return f"TCA fill {self.fill_id} {self.venue}"


class RoutedChild(models.Model):
    order = models.OneToOneField(
        "orders.Order", on_delete=models.CASCADE, primary_key=True, related_name="routed_child"
    )
    venue = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    quantity = models.DecimalField(**PRICE)
    filled_quantity = models.DecimalField(**PRICE, default=ZERO)
    planned_price = models.DecimalField(**PRICE, null=True, blank=True)
    average_price = models.DecimalField(**PRICE, null=True, blank=True)
    rejected = models.BooleanField(default=False)
    ack_latency_ms = models.FloatField(null=True, blank=True)
    finished_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["venue", "symbol", "finished_at"], name="tca_child_venue_idx"),
        ]

    def __str__(self) -> str:
        return f"child {self.order_id} at {self.venue}"


class VenueScore(models.Model):
    venue = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    children = models.PositiveIntegerField(default=0)
    fills = models.PositiveIntegerField(default=0)
    fill_rate = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    reject_rate = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    ack_latency_p50_ms = models.PositiveIntegerField(null=True, blank=True)
    slippage_bp = models.DecimalField(**BPS, null=True, blank=True)
    markout_1s_bp = models.DecimalField(**BPS, null=True, blank=True)
    markout_5s_bp = models.DecimalField(**BPS, null=True, blank=True)
    score = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(1))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol", "venue"]
        constraints = [
            models.UniqueConstraint(fields=["venue", "symbol"], name="venue_score_once"),
        ]

    def __str__(self) -> str:
        return f"{self.venue} {self.symbol} {self.score}"


class RouteDecision(models.Model):
    class Kind(models.TextChoices):
        SWEEP = "sweep", "IOC children across venues"
        REST = "rest", "the GTC remainder rests at one venue"
        DONE = "done", "nothing more routed (the remainder is canceled or denied)"

    parent = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="route_decisions"
    )
    round = models.PositiveIntegerField(help_text="1, 2, ... in the order of planning")
    # the parent's amend count when planned: the round budget starts again after an amend
    amend = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    quantity = models.DecimalField(
        max_digits=30, decimal_places=12, help_text="what was left to route"
    )
    inputs = models.JSONField(default=dict, help_text="the inputs that mattered")
    children = models.JSONField(default=list, help_text="the child orders sent")
    venues = models.JSONField(default=list, help_text="per venue: price, reason, quantity...")
    rest_venue = models.CharField(max_length=32, blank=True, default="")
    outcome = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["parent_id", "round"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "round"], name="route_decision_round")
        ]

    def __str__(self) -> str:
        return f"{self.parent_id} round {self.round} ({self.kind})"

    def to_json(self) -> dict[str, object]:
        return {
            "round": self.round,
            "kind": self.kind,
            "quantity": format(self.quantity.normalize(), "f"),
            "created_at": self.created_at.isoformat(),
            "children": self.children,
            "venues": self.venues,
            "rest_venue": self.rest_venue or None,
            "outcome": self.outcome,
            "inputs": self.inputs,
        }
