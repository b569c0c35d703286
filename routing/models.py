"""Route decisions: every plan the router made for a parent order, as a record.

One row per round (``routing/parents.py``): what it was asked to route, the inputs that
mattered (book ages and best prices per venue, venue conditions), the children it sent
and, for every venue considered, why it got what it got (``routing.sor.VenueDecision``'s
JSON). Written once, in the parent's transaction, never changed.
"""

from __future__ import annotations

from django.db import models


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
