"""Alert-worthy events (omsweb/alerts.py): one WARNING line with a stable event name,
counted in /metrics; raised where the breaker opens and the kill switch is engaged."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from omsweb import alerts


def alert_count(event: str) -> float:
    return REGISTRY.get_sample_value("oms_alerts_total", {"event": event}) or 0.0


def test_alert_when_logged_then_warning_with_event_name_and_counted(caplog):
    before = alert_count(alerts.BREAKER_OPEN)
    with caplog.at_level(logging.WARNING, logger="oms.alerts"):
        alerts.alert(alerts.BREAKER_OPEN, venue="sim-a", reason="5xx and timeouts")

    (record,) = [r for r in caplog.records if r.name == "oms.alerts"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == 'event=breaker_open venue=sim-a reason="5xx and timeouts"'
    assert alert_count(alerts.BREAKER_OPEN) == before + 1


def test_alert_when_event_unknown_then_refused():
    with pytest.raises(ValueError, match="unknown alert event"):
        alerts.alert("breaker_opened", venue="sim-a")


def test_alert_names_are_the_documented_contract():
    assert alerts.EVENTS == {
        "breaker_open",
        "reconciliation_mismatch",
        "process_restart",
        "process_fatal",
        "kill_switch_engaged",
    }
