"""``make bench`` (``python -m bench``): the performance numbers of DESIGN section 10.

``run`` starts a throw-away OMS and measures the floors, latency and burst; ``risk``
(pre-trade check evaluation, the kill-switch drill) and ``ws`` (venue fill to blotter,
WebSocket fan-out) provide further sections; ``stats`` holds the shared percentile.
Not part of the production packages; ``docs/BENCHMARKS.md`` records the figures."""
