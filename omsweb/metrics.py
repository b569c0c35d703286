"""What the OMS counts for Prometheus, in every process (prometheus_client).

Multi-process mode: each process (web, every Celery worker and prefork child, the venue
stream, the process manager's listener) writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (``OMS_HOME/metrics``, set in ``omsweb/settings.py`` and by
``oms``; ``oms up`` empties it on start), and ``/metrics`` on the web server adds them up
(``omsweb/metrics_endpoint.py``). The variable must be set before prometheus_client is
imported, which is why Django's settings set it and everything else imports this module.

Counting is cheap (an increment in shared memory, no query, no network), so the order
path may count. What is *state* (orders by status, breakers, rate-limit use, queue
depths, process states) is not counted here but read when ``/metrics`` is scraped.

Metrics other parts set:

* ``RECONCILIATION_FINDINGS.labels(venue=..., kind=...).inc(n)``: reconciliation.
* ``set_marketdata(venue, symbol, state, last_update)``: the market-data handler.

Nothing here imports Django.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

SUBMIT_ACK = Histogram(
    "oms_order_submit_ack_seconds",
    "New order accepted by the API to the venue's first answer (ack, fill or reject)",
    ["venue"],
    buckets=_LATENCY_BUCKETS,
)
FILL_PUSH = Histogram(
    "oms_fill_push_seconds",
    "Venue execution time of a fill to its push to the blotters",
    buckets=_LATENCY_BUCKETS,
)
VENUE_ERRORS = Counter(
    "oms_venue_errors",
    "Venue calls that failed, by kind (in_doubt, rate_limited, rejected, not_found, "
    "breaker_open, limiter_down, other)",
    ["venue", "kind"],
)
RECONCILIATION_FINDINGS = Counter(
    "oms_reconciliation_findings",
    "Differences reconciliation found between the OMS and a venue, by kind",
    ["venue", "kind"],
)
PROCESS_RESTARTS = Counter(
    "oms_process_restarts",
    "Supervised processes restarted after they died (or failed to start)",
    ["process"],
)
ALERTS = Counter("oms_alerts", "Alert-worthy events logged (omsweb/alerts.py)", ["event"])

# Market-data state per venue and symbol, as numbers (a Prometheus value is a number).
MARKETDATA_STATES = {"LIVE": 0, "STALE": 1, "RESYNCING": 2, "DOWN": 3}
MARKETDATA_STATE = Gauge(
    "oms_marketdata_state",
    "Market-data state per venue and symbol: 0 LIVE, 1 STALE, 2 RESYNCING, 3 DOWN",
    ["venue", "symbol"],
    multiprocess_mode="mostrecent",
)
MARKETDATA_LAST_UPDATE = Gauge(
    "oms_marketdata_last_update_timestamp_seconds",
    "Unix time of the last book update per venue and symbol (age: time() - this)",
    ["venue", "symbol"],
    multiprocess_mode="mostrecent",
)


def set_marketdata(venue: str, symbol: str, state: str, last_update: float | None) -> None:
    """The market-data handler's view of one book: its state and when it last moved."""
    if state not in MARKETDATA_STATES:
        raise ValueError(f"market-data state {state!r}; known: {sorted(MARKETDATA_STATES)}")
    MARKETDATA_STATE.labels(venue=venue, symbol=symbol).set(MARKETDATA_STATES[state])
    if last_update is not None:
        MARKETDATA_LAST_UPDATE.labels(venue=venue, symbol=symbol).set(last_update)
