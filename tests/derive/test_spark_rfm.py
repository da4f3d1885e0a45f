"""The same RFM expression on a local Spark session and on DuckDB gives the same table."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from derive_data import AS_OF, CUSTOMERS, EXPECTED, TINY, load_cdnow, load_orders

from conftest import dataset
from surmesure.derive.rfm import rfm
from surmesure.derive.source import ibis_backend
from surmesure.derive.spark import copy_tables, spark_backend
from surmesure.store import Store, open_store

pytestmark = [
    # PySpark 4.0 and py4j warn about their own internals (sockets, deprecated pandas paths)
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def _rows(table: Any) -> list[dict[str, Any]]:
    rows = table.to_pyarrow().to_pylist()
    for row in rows:
        row["monetary"] = round(row["monetary"], 6)
    return sorted(rows, key=lambda r: r["person_id"])


def _store(folder: Path) -> Store:
    return open_store(f"duckdb:///{folder / 'store.duckdb'}")


def test_rfm_on_spark_equals_duckdb_by_hand(spark: Any, tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        load_orders(store, CUSTOMERS, TINY)
        copied = copy_tables(store, spark)
        with ibis_backend(store) as duck:
            want = _rows(rfm(duck, AS_OF))
    finally:
        store.dispose()
    assert copied == {"identifiers": 13, "orders": 13, "order_lines": 16}
    got = _rows(rfm(spark_backend(spark), AS_OF))
    assert got == want
    assert {r["person_id"]: r["rfm_segment"] for r in got} == {
        p: e[-1] for p, e in EXPECTED.items()
    }


def test_rfm_on_spark_equals_duckdb_on_cdnow(spark: Any, tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        load_cdnow(store, dataset("cdnow/CDNOW_sample.txt"))
        copy_tables(store, spark)
        with ibis_backend(store) as duck:
            want = _rows(rfm(duck, date(1997, 9, 30)))
    finally:
        store.dispose()
    got = _rows(rfm(spark_backend(spark), date(1997, 9, 30)))
    assert len(got) == len(want) == 2_357
    assert got == want
