"""backtest/report.py: the self-contained HTML page written from a run's output files."""

from __future__ import annotations

import csv
import re

from backtest.report import MAX_TABLE_ROWS, write_report
from tests.backtest.sample_run import write_sample_run


def test_write_report_when_full_run_then_every_section_in_one_page(tmp_path):
    # Arrange
    out = write_sample_run(tmp_path / "run", fills=12)
    # Act
    path = write_report(out)
    # Assert
    assert path == out / "report.html"
    page = path.read_text()
    for section in (
        "summary",
        "price",
        "position",
        "equity",
        "latency",
        "slippage",
        "venues",
        "reasons",
        "orders",
        "fills",
        "details",
    ):
        assert f'<section id="{section}">' in page, section
    # one marker per fill: 6 buys (triangles up, green) and 6 sells
    assert page.count('class="mk"') == 12
    assert "6 buy fills, 6 sell fills" in page
    # the headline figures and the reasons are shown
    assert "-0.73" in page and "MAX_ORDER_NOTIONAL" in page
    assert "resolved: executed at venue" in page and "In doubt: causes" in page
    assert page.count("<svg") >= 8  # price, position, equity, drawdown, 3 latency, 3 markout
    assert "sim-a" in page and "sim-b" in page


def test_write_report_then_nothing_is_loaded_from_elsewhere(tmp_path):
    page = write_report(write_sample_run(tmp_path / "run")).read_text()
    # no external script, stylesheet, image or font: everything is inline
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "<script src" not in page


def test_write_report_when_cells_hold_markup_then_escaped(tmp_path):
    page = write_report(write_sample_run(tmp_path / "run")).read_text()
    assert "insufficient balance &lt;b&gt;" in page
    assert "insufficient balance <b>" not in page


def test_write_report_when_files_missing_then_page_names_them(tmp_path):
    # Arrange: a run directory with only a summary
    out = write_sample_run(tmp_path / "run")
    for name in ("orders.csv", "fills.csv", "series.csv", "latency.csv"):
        (out / name).unlink()
    # Act
    page = write_report(out).read_text()
    # Assert
    assert "Missing or unreadable inputs" in page
    for name in ("orders.csv", "fills.csv", "series.csv", "latency.csv"):
        assert f"{name}: missing" in page
    assert "no latency samples" in page


def test_write_report_when_summary_not_json_then_said_and_the_rest_drawn(tmp_path):
    out = write_sample_run(tmp_path / "run")
    (out / "summary.json").write_text("{not json")
    page = write_report(out).read_text()
    assert "summary.json: " in page
    assert page.count('class="mk"') == 12  # the fills are still drawn from fills.csv


def test_write_report_when_many_orders_then_table_cut_with_a_note(tmp_path):
    # Arrange: the orders file grows past what a table shows
    out = write_sample_run(tmp_path / "run")
    with (out / "orders.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    template = rows[0]
    with (out / "orders.csv").open("a", newline="") as f:
        w = csv.DictWriter(f, list(template))
        for i in range(MAX_TABLE_ROWS + 50):
            w.writerow({**template, "client_order_id": f"extra-{i}"})
    # Act
    page = write_report(out).read_text()
    # Assert
    total = len(rows) + MAX_TABLE_ROWS + 50
    assert f"First {MAX_TABLE_ROWS} of {total} orders" in page
    assert "extra-0" in page and f"extra-{MAX_TABLE_ROWS + 49}" not in page


def test_write_report_when_empty_run_then_page_without_charts(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    page = write_report(out).read_text()
    assert "no price series and no fills" in page
    assert "summary.json: missing" in page
