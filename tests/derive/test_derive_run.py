"""``derive`` end to end: stored rows, same-day reruns, export, and the CLI commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import typer
from derive_data import AS_OF, CUSTOMERS, EXPECTED, TINY, load_orders
from typer.testing import CliRunner

from conftest import dataset
from surmesure.cli.derive import register
from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.derive import bgnbd
from surmesure.derive.export import export_derived
from surmesure.derive.run import derive
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import blind
from surmesure.store import Store, open_store

pytestmark = pytest.mark.filterwarnings(
    "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
)

NOW = datetime(2024, 4, 1, 6, 0)
# (x, t_x, T) in days and m, by hand from TINY: purchase days, not orders
STATS = {
    1: (1, 75, 76, 20.0),  # Jan 15 and Mar 30
    2: (0, 0, 59, None),
    3: (1, 91, 121, 25.0),  # Dec 1 (two orders: one day) and Mar 1
    4: (0, 0, 0, None),  # bought on as_of itself
    7: (0, 0, 100, None),
}


def _derived(store: Store) -> list[dict[str, object]]:
    with store.connect() as conn:
        query = "SELECT * FROM derived_metrics ORDER BY person_id, computed_on"
        rows = conn.execute(sa.text(query))
        return [dict(r._mapping) for r in rows]


def test_derive_stores_one_row_per_identified_person(store: Store) -> None:
    load_orders(store, CUSTOMERS, TINY)
    result = derive(store, as_of=AS_OF, horizon_days=365, discount_rate=0.1, now=NOW)
    assert (result.people, result.buyers, result.rows_written) == (6, 5, 6)
    assert result.segments["At risk"] == 2 and result.segments["New"] == 1
    assert sum(result.segments.values()) == 5
    rows = {r["person_id"]: r for r in _derived(store)}
    assert set(rows) == {1, 2, 3, 4, 5, 7}
    assert {p: r["customer_id"] for p, r in rows.items()} == {
        p: blind.index(store, "customer_id", c) for p, c in CUSTOMERS.items() if p != 6 and c
    }  # stored as blind indexes; the export opens them (below)
    for person, (recency, frequency, monetary, r, f, m, fm, segment) in EXPECTED.items():
        row = rows[person]
        assert (row["recency_days"], row["frequency"], row["rfm_segment"]) == (
            recency,
            frequency,
            segment,
        )
        assert row["monetary"] == pytest.approx(monetary)
        assert (row["r_score"], row["f_score"], row["m_score"], row["fm_score"]) == (r, f, m, fm)
        x, t_x, T, mean = STATS[person]
        assert (row["repeat_purchases"], row["purchase_span_days"], row["customer_age_days"]) == (
            x,
            t_x,
            T,
        )
        assert row["mean_repeat_value"] == (None if mean is None else pytest.approx(mean))
        assert row["as_of"] == AS_OF and row["computed_on"] == NOW.date()
        assert (row["horizon_days"], row["discount_rate"]) == (365, 0.1)
    # the stored P(alive) is the model's, for the stored statistics
    assert result.model is not None
    people = sorted(STATS)
    x, t_x, T = (np.array([STATS[p][i] for p in people], float) for i in range(3))
    alive = bgnbd.p_alive(result.model.bgnbd, x, t_x / 7, T / 7)
    assert [rows[p]["p_alive"] for p in people] == pytest.approx(alive.tolist(), rel=1e-12)
    assert rows[2]["p_alive"] == 1.0  # no repeat purchase
    # the person who only returned goods is listed, with no metric
    assert rows[5]["frequency"] is None and rows[5]["p_alive"] is None
    assert rows[5]["expected_value"] is None and rows[5]["rfm_segment"] is None


def test_rerun_same_day_replaces_next_day_adds(store: Store) -> None:
    load_orders(store, CUSTOMERS, TINY)
    derive(store, as_of=AS_OF, now=NOW)
    again = derive(store, as_of=AS_OF, horizon_days=30, now=NOW + timedelta(hours=3))
    assert again.rows_written == 6
    rows = _derived(store)
    assert len(rows) == 6 and {r["horizon_days"] for r in rows} == {30}
    derive(store, as_of=AS_OF, now=NOW + timedelta(days=1))
    assert len(_derived(store)) == 12


def test_export_latest_run(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        export_derived(store, tmp_path / "none.parquet")
    load_orders(store, CUSTOMERS, TINY)
    derive(store, as_of=AS_OF, horizon_days=90, now=NOW)
    derive(store, as_of=AS_OF, horizon_days=30, now=NOW + timedelta(days=1))
    assert export_derived(store, tmp_path / "out.parquet") == 6
    data = pq.read_table(tmp_path / "out.parquet")
    assert data.column("person_id").to_pylist() == [1, 2, 3, 4, 5, 7]
    assert set(data.column("horizon_days").to_pylist()) == {30}
    assert {"customer_id", "expected_purchases", "expected_value", "p_alive"} <= set(
        data.column_names
    )
    assert export_derived(store, tmp_path / "out.csv") == 6
    csv = pacsv.read_csv(tmp_path / "out.csv")
    assert csv.column("customer_id").to_pylist() == ["C1", "C2", "C3", "C4", "C5", "C7"]
    with pytest.raises(InvalidInput, match="unknown file extension"):
        export_derived(store, tmp_path / "out.xlsx")


def test_bad_horizon_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="Horizon 0 days"):
        derive(store, as_of=AS_OF, horizon_days=0, now=NOW)


ONLINE_RETAIL = "online_retail_II/online_retail_II_2009_2010.csv.gz"
SAMPLE_SQL = """
COPY (SELECT * FROM read_csv(?, all_varchar = true)
      WHERE "Customer ID" LIKE '%37' OR "Customer ID" LIKE '%73' OR "Customer ID" = '')
TO '{out}' (HEADER, DELIMITER ',')
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    monkeypatch.setenv("SURMESURE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.mark.realdata
def test_cli_derive_and_export(runner: CliRunner, tmp_path: Path) -> None:
    source = dataset(ONLINE_RETAIL)
    sample = tmp_path / "sample.csv"
    with duckdb.connect() as con:
        con.execute(SAMPLE_SQL.format(out=sample), [str(source)])
        customers = {
            row[0]
            for row in con.execute(
                'SELECT DISTINCT "Customer ID" FROM read_csv(?, all_varchar = true) '
                "WHERE \"Customer ID\" <> ''",
                [str(sample)],
            ).fetchall()
        }
    store = open_store(get_settings().database_url)
    import_file(store, "orders", sample, preset="online-retail")
    store.dispose()
    app = typer.Typer()
    register(app)

    result = runner.invoke(
        app,
        [
            "derive",
            "--as-of",
            "2010-12-09",
            "--horizon-days",
            "180",
            "--window-days",
            "60",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["people"] == len(customers) > 50
    assert report["rows_written"] == report["people"]
    assert report["as_of"] == "2010-12-09" and report["horizon_days"] == 180
    assert report["window_days"] == 60 and report["satisfaction"]["nps"] is None
    assert report["model"]["bgnbd"]["converged"] is True
    assert sum(report["segments"].values()) == report["buyers"]

    out = tmp_path / "derived.parquet"
    exported = runner.invoke(app, ["export", "derived", str(out), "--json"])
    assert exported.exit_code == 0, exported.output
    assert orjson.loads(exported.stdout)["rows"] == len(customers)
    data = pq.read_table(out).to_pylist()
    assert {row["customer_id"] for row in data} == customers
    buyers = [row for row in data if row["frequency"] is not None]
    assert len(buyers) == report["buyers"]
    assert all(0 < row["p_alive"] <= 1 for row in buyers)
    assert all(row["expected_purchases"] >= 0 and row["expected_value"] >= 0 for row in buyers)
    assert all(row["as_of"] == date(2010, 12, 9) for row in data)

    table = runner.invoke(app, ["derive", "--as-of", "2010-12-09"])
    assert table.exit_code == 0, table.output
    assert "Champions" in table.stdout and "identified people" in table.stdout

    bad = runner.invoke(app, ["export", "derived", str(tmp_path / "derived.xlsx")])
    assert bad.exit_code == 2
    assert "unknown file extension" in bad.output and "fix:" in bad.output
    refused = runner.invoke(app, ["derive", "--horizon-days", "-5"])
    assert refused.exit_code == 2 and "Horizon -5 days" in refused.output


def test_empty_store_derives_nothing(store: Store) -> None:
    result = derive(store, as_of=AS_OF, now=NOW)
    assert (result.people, result.buyers, result.rows_written) == (0, 0, 0)
    assert result.model is None and result.notes
    assert set(result.segments.values()) == {0}


def test_without_as_of_an_old_history_is_measured_where_it_ends(store: Store) -> None:
    load_orders(store, CUSTOMERS, TINY)  # the last order is on 2024-04-02
    years_later = derive(store, now=datetime(2026, 12, 4, 9, 0))
    current = derive(store, now=NOW)  # 2024-04-01: the data reaches today
    explicit = derive(store, as_of=AS_OF, now=datetime(2026, 12, 4, 9, 0))
    assert years_later.as_of == date(2024, 4, 3)
    assert "the day after the latest order or event" in years_later.notes[0]
    assert "--as-of" in years_later.notes[0]
    assert current.as_of == date(2024, 4, 1)
    assert not any("latest order" in n for n in current.notes)
    assert explicit.as_of == AS_OF
    assert not any("latest order" in n for n in explicit.notes)
    # the same metrics as when the day is given: recency counts from the data's end
    assert years_later.segments == derive(store, as_of=date(2024, 4, 3), now=NOW).segments


def test_kpis_without_as_of_say_where_the_data_ends(store: Store) -> None:
    from surmesure.derive.kpi import kpis

    load_orders(store, CUSTOMERS, TINY)
    k = kpis(store)
    assert k.as_of == date(2024, 4, 3) and k.as_of_note is not None
    assert k.buyers == kpis(store, as_of=date(2024, 4, 3)).buyers
