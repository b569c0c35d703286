"""What the venue layer says happened, for the listeners of ``omsweb.events``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VenueStatusChanged:
    """A venue's circuit breaker opened, or the venue came back."""

    venue_id: int
    detail: str
