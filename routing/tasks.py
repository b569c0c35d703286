"""Routing's periodic work: the TCA sweep (``routing/tca.py``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="oms.recon.tca_sweep", acks_late=True, time_limit=30, expires=5)
def tca_sweep() -> dict[str, int]:
    """Give new top-level orders their TCA row (arrival mid) and sample the markouts that
    are due, at most one batch of each a run (the rest waits for the next run, a second
    later). Idempotent: rows are inserted only where missing, samples are taken from Redis
    atomically, a sample stored twice stores the same mid, a failed batch is put back."""
    from routing.tca import sweep_arrivals, sweep_markouts

    return {"arrivals": sweep_arrivals(), "markouts": sweep_markouts()}
