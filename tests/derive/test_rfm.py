"""RFM on a hand-made order history (both stores) and on Online Retail II (DuckDB)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from derive_data import AS_OF, CUSTOMERS, EXPECTED, TINY, load_orders

from conftest import copy_store, dataset
from surmesure.derive.rfm import GRID, SEGMENTS, fm_score_of, rfm, segment_of
from surmesure.derive.source import ibis_backend
from surmesure.protect import blind
from surmesure.store import Store, open_store

# Ibis 12 calls a method DuckDB 2.0 deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
)


def _rfm_rows(store: Store, as_of: date) -> dict[int, tuple[object, ...]]:
    with ibis_backend(store) as backend:
        table = rfm(backend, as_of).to_pyarrow()
    return {
        row["person_id"]: (
            row["recency_days"],
            row["frequency"],
            round(row["monetary"], 6),
            row["r_score"],
            row["f_score"],
            row["m_score"],
            row["fm_score"],
            row["rfm_segment"],
        )
        for row in table.to_pylist()
    }


def test_rfm_by_hand(store: Store) -> None:
    load_orders(store, CUSTOMERS, TINY)
    assert _rfm_rows(store, AS_OF) == EXPECTED


def test_as_of_excludes_later_orders(store: Store) -> None:
    load_orders(store, CUSTOMERS, TINY)
    rows = _rfm_rows(store, date(2024, 2, 5))
    # person 1: only A2 (Jan 15); person 2: B1 only, the return of Feb 10 comes later
    assert rows[1][:3] == (21, 1, 30.0)
    assert rows[2][:3] == (4, 1, 100.0)
    assert set(rows) == {1, 2, 3, 7}


def test_grid_is_complete_and_uses_every_segment() -> None:
    cells = {segment_of(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert cells == set(SEGMENTS)
    assert len(GRID) == 5 and all(len(row) == 5 for row in GRID.values())
    assert segment_of(5, 5) == "Champions" and segment_of(1, 1) == "Lost"
    assert segment_of(1, 5) == "Can't lose them" and segment_of(5, 1) == "New"
    assert [fm_score_of(f, m) for f, m in [(1, 1), (1, 2), (2, 2), (4, 5), (5, 5)]] == [
        1,
        2,
        2,
        5,
        5,
    ]


ONLINE_RETAIL = "online_retail_II/online_retail_II_2009_2010.csv.gz"

# Written without Ibis: net non-fee value per order, then per identified person.
REFERENCE_SQL = """
WITH lines AS (
    SELECT order_id, sum(amount) AS amount FROM order_lines WHERE NOT is_fee GROUP BY order_id
), kept AS (
    SELECT o.person_id, o.order_id, CAST(o.ordered_at AS DATE) AS day, o.is_return,
           coalesce(l.amount, 0) AS amount
    FROM orders o LEFT JOIN lines l USING (order_id)
    WHERE o.person_id IN (SELECT person_id FROM identifiers WHERE kind = 'customer_id')
      AND CAST(o.ordered_at AS DATE) <= DATE '2010-12-09'
)
SELECT person_id,
       DATE '2010-12-09' - max(day) FILTER (WHERE NOT is_return) AS recency_days,
       count(DISTINCT order_id) FILTER (WHERE NOT is_return) AS frequency,
       sum(amount) AS monetary
FROM kept GROUP BY person_id
HAVING count(*) FILTER (WHERE NOT is_return) > 0
"""


def _scores(frame: pd.DataFrame, keys: list[str], ascending: list[bool]) -> pd.Series:
    ordered = frame.sort_values([*keys, "person_id"], ascending=[*ascending, True])
    position = pd.Series(range(len(ordered)), index=ordered.index)
    return position * 5 // len(ordered) + 1


@pytest.mark.realdata
def test_online_retail_matches_independent_computation(
    online_retail: tuple[Path, Any], tmp_path: Path
) -> None:
    duckdb_store = open_store(copy_store(online_retail[0], tmp_path))  # the file, imported
    try:
        _matches_independent_computation(duckdb_store)
    finally:
        duckdb_store.dispose()


def _matches_independent_computation(duckdb_store: Store) -> None:
    as_of = date(2010, 12, 9)
    with duckdb_store.connect() as conn:
        raw = duckdb_store.raw_duckdb(conn)
        frame = raw.sql(REFERENCE_SQL).to_arrow_table().to_pandas()
    frame["cents"] = (frame["monetary"] * 100).round().astype("int64")
    frame["r"] = _scores(frame, ["recency_days", "frequency", "cents"], [False, True, True])
    frame["f"] = _scores(frame, ["frequency", "cents", "recency_days"], [True, True, False])
    frame["m"] = _scores(frame, ["cents", "frequency", "recency_days"], [True, True, False])
    with ibis_backend(duckdb_store) as backend:
        got = rfm(backend, as_of).to_pyarrow().to_pandas().set_index("person_id").sort_index()
    want = frame.set_index("person_id").sort_index()
    assert len(got) == len(want) == 4_314
    assert (got.index == want.index).all()
    assert (got["recency_days"] == want["recency_days"]).all()
    assert (got["frequency"] == want["frequency"]).all()
    assert ((got["monetary"] - want["monetary"]).abs() < 1e-6).all()
    assert (got["r_score"] == want["r"]).all()
    assert (got["f_score"] == want["f"]).all()
    assert (got["m_score"] == want["m"]).all()
    segments = [segment_of(r, fm_score_of(f, m)) for r, f, m in want[["r", "f", "m"]].values]
    assert got["rfm_segment"].tolist() == segments
    # equal-size quintiles: 4,314 buyers -> every score holds 862 or 863 people
    assert set(got["r_score"].value_counts()) <= {862, 863}
    assert set(got["rfm_segment"]) == set(SEGMENTS)
    # the raw file agrees on the best customer by net value (an independent look)
    with duckdb.connect() as con:
        top = con.execute(
            'SELECT "Customer ID" FROM read_csv(?, all_varchar = true) '
            "WHERE \"Customer ID\" <> '' AND CAST(InvoiceDate AS TIMESTAMP) < '2010-12-10' "
            "GROUP BY 1 ORDER BY sum(CAST(Quantity AS DOUBLE) * CAST(Price AS DOUBLE)) DESC "
            "LIMIT 1",
            [str(dataset(ONLINE_RETAIL))],
        ).fetchone()
    assert top is not None
    with duckdb_store.connect() as conn:
        raw = duckdb_store.raw_duckdb(conn)
        best = raw.execute(
            "SELECT person_id FROM identifiers WHERE kind = 'customer_id' AND value = ?",
            [blind.index(duckdb_store, "customer_id", top[0].split(".")[0])],
        ).fetchone()
    assert best is not None
    assert got["m_score"][best[0]] == 5
