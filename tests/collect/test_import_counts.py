"""Imports count what they did: a reference file imported again changes and adds nothing, a
changed row is ``updated``, and a file copied to another folder quarantines nothing twice."""

from __future__ import annotations

import shutil
from pathlib import Path

from import_helpers import count, rows, write_file

from surmesure.collect.importer import import_file
from surmesure.store import Store

PRODUCTS = [
    {"product_code": "P1", "name": "Mug", "category": "kitchen", "price": "4.5"},
    {"product_code": "P2", "name": "Plate", "category": "kitchen", "price": "10"},
    {"product_code": "P3", "name": "Bowl", "category": None, "price": "7.25"},
]
STORES = [
    {"store_id": "S1", "name": "Lyon", "city": "Lyon", "latitude": "45.76", "longitude": "4.86"},
    {"store_id": "S2", "name": "Nice", "city": "Nice", "latitude": "43.70", "longitude": "7.27"},
]
STOCK = [
    {"product_code": "P1", "store_id": "S1", "quantity": "3"},
    {"product_code": "P1", "store_id": "S2", "quantity": "0"},
    {"product_code": "P2", "store_id": "online", "quantity": "12"},
]


def test_reference_data_imported_again_is_already_stored(store: Store, tmp_path: Path) -> None:
    for kind, records in (("products", PRODUCTS), ("stores", STORES), ("stock", STOCK)):
        path = write_file(tmp_path, kind, "csv", records)
        first = import_file(store, kind, path)
        assert (first.rows_accepted, first.rows_updated, first.rows_duplicate) == (
            len(records),
            0,
            0,
        )
        stamps = rows(store, f"SELECT * FROM {kind} ORDER BY 1, 2")
        again = import_file(store, kind, path)
        assert (again.rows_accepted, again.rows_updated, again.rows_duplicate) == (
            0,
            0,
            len(records),
        ), kind
        # nothing was rewritten: not even the time of the last change
        assert rows(store, f"SELECT * FROM {kind} ORDER BY 1, 2") == stamps
    runs = rows(store, "SELECT rows_read, rows_accepted, rows_duplicate FROM import_runs")
    assert [r["rows_accepted"] for r in runs] == [3, 0, 2, 0, 3, 0]


def test_a_changed_row_is_updated_and_a_missing_value_changes_nothing(
    store: Store, tmp_path: Path
) -> None:
    import_file(store, "products", write_file(tmp_path, "products", "csv", PRODUCTS))
    changed = [
        {**PRODUCTS[0], "price": "4.90"},  # a new price
        {**PRODUCTS[1], "name": None},  # a missing name never erases the known one
        {**PRODUCTS[2]},
        {"product_code": "P4", "name": "Jug", "category": "kitchen", "price": "12"},
    ]
    result = import_file(store, "products", write_file(tmp_path, "changed", "csv", changed))
    assert (result.rows_accepted, result.rows_updated, result.rows_duplicate) == (1, 1, 2)
    assert rows(store, "SELECT product_code, name, price FROM products ORDER BY 1") == [
        {"product_code": "P1", "name": "Mug", "price": 4.9},
        {"product_code": "P2", "name": "Plate", "price": 10.0},
        {"product_code": "P3", "name": "Bowl", "price": 7.25},
        {"product_code": "P4", "name": "Jug", "price": 12.0},
    ]


def test_a_copy_in_another_folder_quarantines_nothing_twice(store: Store, tmp_path: Path) -> None:
    people = [
        {"customer_id": "C1", "gender": "female"},
        {"customer_id": "C2", "gender": "f"},
        {"customer_id": "C3", "email": "not-an-email"},
    ]
    path = write_file(tmp_path, "customers", "csv", people)
    first = import_file(store, "customers", path)
    assert first.rows_quarantined == 2
    other = tmp_path / "elsewhere"
    other.mkdir()
    copy = Path(shutil.copy(path, other / "customers.csv"))
    again = import_file(store, "customers", copy)
    # the run reports what it refused, the quarantine keeps each record once
    assert (again.rows_accepted, again.rows_quarantined, again.rows_duplicate) == (0, 2, 1)
    assert count(store, "quarantine") == 2
