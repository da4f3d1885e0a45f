"""The HTML report and the ``kpi`` and ``report`` commands, on the hand-made history."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import orjson
import pytest
import typer
from derive_data import AS_OF, CUSTOMERS, EXPECTED, TINY, load_answers, load_orders
from test_derive_kpi import ANSWERS
from typer.testing import CliRunner

from surmesure.cli.derive import register
from surmesure.config import get_settings
from surmesure.derive.report import latest_run, rfm_cells, write_report
from surmesure.derive.run import derive
from surmesure.store import Store, open_store


def test_report_is_a_self_contained_page(duckdb_store: Store, tmp_path: Path) -> None:
    load_orders(duckdb_store, CUSTOMERS, TINY)
    load_answers(duckdb_store, ANSWERS)
    derive(duckdb_store, as_of=AS_OF, now=datetime(2024, 4, 1, 6, 0))
    out = tmp_path / "deep" / "report.html"
    result = write_report(duckdb_store, out)
    page = out.read_text()
    assert result.as_of == AS_OF and result.people == 6
    # five buyers are too few for the Gamma-Gamma spend model: no expected value, no CLV
    # figure; no channel activity in this history: no appetence figure
    assert latest_run(duckdb_store).column("expected_value").null_count == 6
    figures = ["RFM grid", "Cohort retention", "NPS by month", "Engagement by segment"]
    assert result.figures == figures
    assert page.count("<svg") == 4 and page.count("No data yet") == 2
    # nothing fetched: no script, no link, no image source; only the SVG namespace
    assert "<script" not in page and "<link" not in page and "<img" not in page
    urls = set(re.findall(r"https?://[^\"' )]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert "Customer base at 2024-03-31" in page
    assert "40.0%" in page  # repeat purchase rate, 2 of 5 buyers
    # satisfaction by segment in the segments' order, each resting on few answers
    table = page[page.index("Satisfaction by RFM segment") :]
    rows = [table.index(f"<td>{s} (few answers)</td>") for s in ("Loyal", "Potential loyalist")]
    rows.append(table.index("<td>At risk (few answers)</td>"))
    assert rows == sorted(rows)
    assert "0 &plusmn; 139" in table  # At risk: one promoter and one detractor

    counts, revenue = rfm_cells(latest_run(duckdb_store))
    want_counts = [[0.0] * 5 for _ in range(5)]
    want_revenue = [[0.0] * 5 for _ in range(5)]
    for _, _, monetary, r, _, _, fm, _ in EXPECTED.values():
        want_counts[r - 1][fm - 1] += 1
        want_revenue[r - 1][fm - 1] += monetary
    assert counts.tolist() == want_counts
    assert revenue.ravel().tolist() == pytest.approx([x for row in want_revenue for x in row])


def test_report_before_any_derive_says_what_is_missing(duckdb_store: Store, tmp_path: Path) -> None:
    result = write_report(duckdb_store, tmp_path / "r.html")
    assert result.people == 0 and result.figures == []
    assert (tmp_path / "r.html").read_text().count("No data yet") == 6


def test_kpi_and_report_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    store = open_store(url)
    try:
        load_orders(store, CUSTOMERS, TINY)
        derive(store, as_of=AS_OF)
    finally:
        store.dispose()
    app = typer.Typer()
    register(app)
    monkeypatch.setenv("SURMESURE_DATABASE_URL", url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        kpi = runner.invoke(app, ["kpi", "--as-of", "2024-03-31", "--json"])
        assert kpi.exit_code == 0, kpi.output
        payload = orjson.loads(kpi.stdout)
        assert (payload["buyers"], payload["purchase_orders"]) == (5, 8)
        assert payload["churn_rate"] == 0.5
        shown = runner.invoke(app, ["kpi", "--as-of", "2024-03-31"])
        assert shown.exit_code == 0 and "repeat purchase rate" in shown.output
        bad = runner.invoke(app, ["kpi", "--horizon-days", "-3"])
        assert bad.exit_code != 0 and "--horizon-days" in bad.output
        out = tmp_path / "r.html"
        report = runner.invoke(app, ["report", "--out", str(out), "--json"])
        assert report.exit_code == 0, report.output
        written = orjson.loads(report.stdout)
        assert written["path"] == str(out) and out.stat().st_size == written["bytes"]
        assert written["as_of"] == "2024-03-31"
    finally:
        get_settings.cache_clear()
