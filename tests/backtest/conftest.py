"""Where the shared real recordings are, and the marker for tests that need them."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "binance-spot"  # ../shared from the checkout

needs_shared = pytest.mark.skipif(
    not (SHARED / "btcusdt_20240808.gz").exists(),
    reason=f"needs the shared real recordings at {SHARED} (../shared/data/binance-spot; CI has them)",
)
