"""Routing's periodic work: the TCA markout sweep (``routing/tca.py``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="oms.recon.tca_markouts", acks_late=True, time_limit=30, expires=5)
def sweep_markouts() -> int:
    """Sample the TCA markouts that are due (at most one batch a run; the rest waits for
    the next run, a second later). Idempotent: samples are taken from Redis atomically,
    a sample stored twice stores the same mid, and a failed batch is put back."""
    from routing.tca import sweep_markouts as sweep

    return sweep()
