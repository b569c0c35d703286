"""The backtest report (backtest/report.py) renders in headless Chromium with no network:
every chart is drawn, nothing is requested from anywhere, no script error, tables sort."""

from __future__ import annotations

import pytest

from backtest.report import write_report
from tests.backtest.sample_run import write_sample_run

pytestmark = [pytest.mark.browser]


@pytest.fixture
def offline_page(browser):
    """A page in a context that refuses (and records) every request but the file itself."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    context.set_default_timeout(15_000)
    requested: list[str] = []

    def guard(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            requested.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", guard)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.requested = requested
    page.js_errors = errors
    yield page
    context.close()


def test_report_when_opened_offline_then_every_chart_drawn_and_nothing_fetched(
    offline_page, tmp_path
):
    # Arrange
    path = write_report(write_sample_run(tmp_path / "run", fills=20))
    # Act
    offline_page.goto(path.as_uri())
    # Assert: the charts have a real size on screen and the fills are marked
    charts = offline_page.locator("svg.chart")
    assert charts.count() >= 8
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 500 and box["height"] > 100, i
    assert offline_page.locator("#price polygon.mk").count() == 20
    assert offline_page.locator("#summary .card").count() >= 10
    assert offline_page.requested == []
    assert offline_page.js_errors == []


def test_report_when_header_clicked_then_rows_sorted_by_that_number(offline_page, tmp_path):
    path = write_report(write_sample_run(tmp_path / "run", fills=20))
    offline_page.goto(path.as_uri())
    table = offline_page.locator("#latency table")
    p99 = table.locator("th", has_text="p99 ms")
    # Act
    p99.click()
    first = [
        float(v)
        for v in table.locator("tbody td:nth-child(6)").evaluate_all(
            "tds => tds.map(td => td.dataset.v)"
        )
    ]
    p99.click()
    second = [
        float(v)
        for v in table.locator("tbody td:nth-child(6)").evaluate_all(
            "tds => tds.map(td => td.dataset.v)"
        )
    ]
    # Assert
    assert first == sorted(first) and second == sorted(second, reverse=True)
    assert offline_page.js_errors == []
