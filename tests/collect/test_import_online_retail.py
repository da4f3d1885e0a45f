"""The ``online-retail`` preset on the real Online Retail II file (525,461 invoice lines)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from import_helpers import count, scalar

from conftest import ONLINE_RETAIL, copy_store, dataset
from surmesure.collect.importer import ImportResult, import_file
from surmesure.protect import blind
from surmesure.store import Store, open_store

pytestmark = pytest.mark.realdata

CSV = ONLINE_RETAIL
PARQUET = "online_retail_II/online_retail_II_2009_2010.parquet"

# Stock codes that are postage, fees and adjustments (the dataset's documentation and a look at
# the codes that are not five digits), counted here straight from the raw file.
FEES_SQL = """
SELECT count(*) FROM read_csv(?, all_varchar = true)
WHERE StockCode IN ('POST', 'DOT', 'C2', 'C3', 'M', 'm', 'D', 'S', 'B', 'BANK CHARGES',
                    'AMAZONFEE', 'ADJUST', 'ADJUST2', 'TEST001', 'TEST002')
   OR StockCode LIKE 'gift\\_0001\\_%' ESCAPE '\\'
"""


def _raw_fee_lines(path: Path) -> int:
    with duckdb.connect() as con:
        row = con.execute(FEES_SQL, [str(path)]).fetchone()
    assert row is not None
    return int(row[0])


def _assert_facts(store: Store, path: Path) -> None:
    assert count(store, "order_lines") == 525_461
    assert count(store, "orders") == 28_816
    assert scalar(store, "SELECT count(*) FROM identifiers WHERE kind = 'customer_id'") == 4_383
    assert scalar(store, "SELECT count(*) FROM people WHERE merged_into IS NULL") == 4_383
    assert scalar(store, "SELECT count(*) FROM orders WHERE is_return") == 4_592
    returned = "SELECT count(*) FROM order_lines l JOIN orders o USING (order_id) WHERE "
    assert scalar(store, returned + "o.is_return") == 10_206
    assert scalar(store, "SELECT count(*) FROM orders WHERE person_id IS NULL") == 5_229
    assert scalar(store, returned + "o.person_id IS NULL") == 107_927
    fees = _raw_fee_lines(dataset(CSV))
    assert scalar(store, "SELECT count(*) FROM order_lines WHERE is_fee") == fees > 0
    fee_products = (
        "SELECT count(*) FROM products p WHERE EXISTS (SELECT 1 FROM order_lines l "
        "WHERE l.product_code = p.product_code AND l.is_fee)"
    )
    assert scalar(store, fee_products) == 0
    assert scalar(
        store, "SELECT customer_ref FROM orders WHERE order_id = '489434'"
    ) == blind.index(store, "customer_id", "13085")
    mismatched = (
        "SELECT count(*) FROM orders o JOIN (SELECT order_id, sum(quantity * unit_price) AS t "
        "FROM order_lines GROUP BY order_id) s USING (order_id) "
        "WHERE abs(o.total_amount - s.t) > 1e-6"
    )
    assert scalar(store, mismatched) == 0


def test_csv_gz_facts_and_idempotent_reimport(
    online_retail: tuple[Path, ImportResult], tmp_path: Path
) -> None:
    stored, result = online_retail  # the file imported once for the session
    path = dataset(CSV)
    duckdb_store = open_store(copy_store(stored, tmp_path))
    try:
        _check_import_and_reimport(duckdb_store, path, result)
    finally:
        duckdb_store.dispose()


def _check_import_and_reimport(duckdb_store: Store, path: Path, result: ImportResult) -> None:
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (525_461,) * 2 + (
        0,
    )
    assert result.new_people == 4_383
    _assert_facts(duckdb_store, path)
    # London winter time is UTC; summer time (BST) is one hour ahead
    assert str(scalar(duckdb_store, "SELECT ordered_at FROM orders WHERE order_id = '489434'")) == (
        "2009-12-01 07:45:00"
    )
    with duckdb.connect() as con:
        summer = con.execute(
            "SELECT Invoice, min(InvoiceDate) FROM read_csv(?, all_varchar = true) "
            "WHERE InvoiceDate LIKE '2010-07-%' GROUP BY Invoice ORDER BY Invoice LIMIT 1",
            [str(path)],
        ).fetchone()
    assert summer is not None
    stored = scalar(duckdb_store, "SELECT ordered_at FROM orders WHERE order_id = :o", o=summer[0])
    assert stored + timedelta(hours=1) == datetime.fromisoformat(summer[1])
    again = import_file(duckdb_store, "orders", path, preset="online-retail")
    assert (again.rows_accepted, again.rows_duplicate, again.new_people) == (0, 525_461, 0)
    _assert_facts(duckdb_store, path)


def test_parquet_gives_the_same_store(duckdb_store: Store) -> None:
    result = import_file(duckdb_store, "orders", dataset(PARQUET), preset="online-retail")
    assert result.rows_accepted == 525_461
    _assert_facts(duckdb_store, dataset(CSV))
    decimals = "SELECT count(*) FROM identifiers WHERE value LIKE '%.%'"
    assert scalar(duckdb_store, decimals) == 0


@pytest.mark.postgres
def test_full_file_on_postgresql(postgres_store: Store) -> None:
    result = import_file(postgres_store, "orders", dataset(CSV), preset="online-retail")
    assert result.rows_accepted == 525_461
    _assert_facts(postgres_store, dataset(CSV))
