"""What the market-data handler says happened, for the listeners of ``omsweb.events``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MarketDataStateChanged:
    """A venue's book for one symbol changed state (LIVE, STALE, RESYNCING, DOWN)."""

    venue: str
    symbol: str
    state: str
    previous: str
    reason: str
