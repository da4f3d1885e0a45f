"""Every import kind and every file format, end to end on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from import_helpers import FORMATS, count, rows, scalar, write_file

from conftest import opened_rows
from held import held
from surmesure.collect.importer import import_file
from surmesure.protect import blind
from surmesure.store import Store

ORDER_LINES = [
    {
        "order_id": "A1",
        "ordered_at": "2024-03-01 10:00:00",
        "product_code": "P1",
        "description": "Mug",
        "quantity": 2,
        "unit_price": 4.5,
        "customer_id": "C1",
        "email": "Marie.Dupont@Example.com",
    },
    {
        "order_id": "A1",
        "ordered_at": "2024-03-01 10:00:00",
        "product_code": "P2",
        "description": "Plate",
        "quantity": 1,
        "unit_price": 10.0,
        "customer_id": "C1",
        "email": "Marie.Dupont@Example.com",
    },
    {
        "order_id": "A2",
        "ordered_at": "2024-03-02T09:30:00",
        "product_code": "P1",
        "description": "Mug",
        "quantity": -1,
        "unit_price": 4.5,
        "is_return": True,
    },
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_orders_in_every_format(store: Store, tmp_path: Path, fmt: str) -> None:
    path = write_file(tmp_path, "orders", fmt, ORDER_LINES)
    result = import_file(store, "orders", path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (3, 3, 0)
    assert result.new_people == 1
    orders = {r["order_id"]: r for r in rows(store, "SELECT * FROM orders")}
    assert orders["A1"]["total_amount"] == pytest.approx(19.0)
    assert orders["A1"]["customer_ref"] == blind.index(store, "customer_id", "C1")
    assert orders["A1"]["person_id"] is not None
    assert orders["A2"]["person_id"] is None and orders["A2"]["is_return"] is True
    assert orders["A2"]["ordered_at"] == datetime(2024, 3, 2, 9, 30)
    lines = rows(store, "SELECT order_id, line_no, product_code FROM order_lines ORDER BY 1, 2")
    assert [(r["order_id"], r["line_no"], r["product_code"]) for r in lines] == [
        ("A1", 1, "P1"),
        ("A1", 2, "P2"),
        ("A2", 1, "P1"),
    ]
    assert [value for _, value, _, _ in held(store, "email")] == ["marie.dupont@example.com"]
    assert count(store, "products") == 2


def test_customers_become_people_with_trait_provenance(store: Store, tmp_path: Path) -> None:
    path = write_file(
        tmp_path,
        "customers",
        "csv",
        [
            {
                "customer_id": "C1",
                "email": "anne@example.com",
                "first_name": "Anne",
                "birth_date": "1980-05-17",
                "gender": "f",
                "source": "crm",
                "observed_at": "2024-01-10 08:00:00",
            },
            {
                "phone": "06 12 34 56 78",
                "email": "ANNE@example.com",
                "first_name": "Annie",
                "source": "call_centre",
            },
            {"customer_id": "C2", "city": "Lyon"},
        ],
    )
    result = import_file(store, "customers", path)
    assert (result.rows_accepted, result.new_people, result.rows_quarantined) == (3, 2, 0)
    query = "SELECT person_id FROM identifiers WHERE value = :v"
    phone = rows(store, query, v=blind.index(store, "phone", "+33612345678"))
    anne = rows(store, query, v=blind.index(store, "customer_id", "C1"))
    assert phone == anne
    traits = {
        (r["name"], r["source"]): r
        for r in opened_rows(store, "traits", "person_id = :p", p=anne[0]["person_id"])
    }
    assert set(traits) == {
        ("first_name", "crm"),
        ("birth_date", "crm"),
        ("gender", "crm"),
        ("first_name", "call_centre"),
    }
    crm = traits[("first_name", "crm")]
    assert crm["reliability"] == pytest.approx(0.9)
    assert crm["observed_at"] == datetime(2024, 1, 10, 8, 0)
    assert traits[("first_name", "call_centre")]["reliability"] == pytest.approx(0.7)
    assert traits[("birth_date", "crm")]["value"] in ("1980-05-17", '"1980-05-17"')
    city = rows(store, "SELECT source FROM traits WHERE name = 'city'")
    assert city == [{"source": "import"}]


def test_products_stock_and_stores_are_upserted(store: Store, tmp_path: Path) -> None:
    products = write_file(
        tmp_path,
        "products",
        "jsonl",
        [
            {"product_code": "P1", "name": "Mug", "category": "kitchen", "price": 4.5},
            {"product_code": "P2", "name": "Plate", "category": "kitchen", "price": 10},
        ],
    )
    assert import_file(store, "products", products).rows_accepted == 2
    renamed = write_file(
        tmp_path, "products2", "csv", [{"product_code": "P1", "name": "Big mug", "price": "5"}]
    )
    again = import_file(store, "products", renamed)
    assert (again.rows_accepted, again.rows_updated, again.rows_duplicate) == (0, 1, 0)
    assert rows(store, "SELECT name, price FROM products WHERE product_code = 'P1'") == [
        {"name": "Big mug", "price": 5.0}
    ]
    # orders add the products they name but never overwrite the catalogue
    assert import_file(store, "orders", write_file(tmp_path, "o", "csv", ORDER_LINES)).rows_read
    assert rows(store, "SELECT name, price, category FROM products ORDER BY product_code") == [
        {"name": "Big mug", "price": 5.0, "category": "kitchen"},
        {"name": "Plate", "price": 10.0, "category": "kitchen"},
    ]
    stock = write_file(
        tmp_path,
        "stock",
        "parquet",
        [
            {"product_code": "P1", "store_id": "online", "quantity": 12},
            {"product_code": "P1", "store_id": "S1", "quantity": 3},
            {"product_code": "P1", "store_id": "S1", "quantity": 4},
        ],
    )
    result = import_file(store, "stock", stock)
    assert (result.rows_accepted, result.rows_duplicate) == (2, 1)
    assert rows(store, "SELECT store_id, quantity FROM stock ORDER BY store_id") == [
        {"store_id": "S1", "quantity": 4},
        {"store_id": "online", "quantity": 12},
    ]
    stores = write_file(
        tmp_path,
        "stores",
        "csv.gz",
        [{"store_id": "S1", "name": "Lyon Part-Dieu", "latitude": "45.76", "longitude": "4.86"}],
    )
    assert import_file(store, "stores", stores).rows_accepted == 1
    assert scalar(store, "SELECT latitude FROM stores") == pytest.approx(45.76)


def test_surveys_email_activity_and_consents(store: Store, tmp_path: Path) -> None:
    surveys = write_file(
        tmp_path,
        "surveys",
        "csv",
        [
            {"email": "a@example.com", "metric": "nps", "score": "9", "answered_at": "2024-02-01"},
            {"metric": "csat", "score": "5", "answered_at": "2024-02-02 10:00:00"},
            {"answer_id": "S-3", "email": "a@example.com", "metric": "ces", "score": "7",
             "answered_at": "2024-02-03 10:00:00"},
        ],
    )  # fmt: skip
    assert import_file(store, "surveys", surveys).rows_accepted == 3
    answers = rows(store, "SELECT * FROM survey_answers ORDER BY answered_at")
    assert [a["score"] for a in answers] == [9, 5, 7]
    assert answers[1]["person_id"] is None and answers[0]["person_id"] is not None
    assert answers[2]["answer_id"] == "S-3"
    assert len(answers[0]["answer_id"]) == 32

    email = write_file(
        tmp_path,
        "email",
        "jsonl",
        [
            {"email": "a@example.com", "kind": "sent", "campaign": "spring",
             "occurred_at": "2024-03-01T08:00:00+01:00"},
            {"email": "a@example.com", "kind": "clicked", "campaign": "spring",
             "url": "https://shop.example.com/", "occurred_at": "2024-03-01 09:00:00"},
        ],
    )  # fmt: skip
    assert import_file(store, "email", email, source="email").rows_accepted == 2
    activity = rows(store, "SELECT * FROM channel_activity ORDER BY occurred_at")
    assert [(a["channel"], a["kind"], a["source"]) for a in activity] == [
        ("email", "sent", "email"),
        ("email", "clicked", "email"),
    ]
    assert activity[0]["occurred_at"] == datetime(2024, 3, 1, 7, 0)

    consents = write_file(
        tmp_path,
        "consents",
        "parquet",
        [
            {"email": "a@example.com", "purpose": "marketing", "channel": "email",
             "granted": True, "recorded_at": datetime(2024, 1, 1, 12, 0)},
            {"email": "a@example.com", "purpose": "profiling", "granted": False,
             "recorded_at": datetime(2024, 1, 2, 12, 0)},
        ],
    )  # fmt: skip
    assert import_file(store, "consents", consents).rows_accepted == 2
    held = rows(store, "SELECT purpose, channel, granted FROM consents ORDER BY recorded_at")
    assert held == [
        {"purpose": "marketing", "channel": "email", "granted": True},
        {"purpose": "profiling", "channel": "any", "granted": False},
    ]
    people = scalar(store, "SELECT count(DISTINCT person_id) FROM consents")
    assert people == 1
    assert scalar(store, "SELECT count(*) FROM people WHERE merged_into IS NULL") == 1


def test_reimport_adds_nothing(store: Store, tmp_path: Path) -> None:
    path = write_file(tmp_path, "orders", "csv", ORDER_LINES)
    import_file(store, "orders", path)
    before = {t: count(store, t) for t in ("orders", "order_lines", "people", "identifiers")}
    again = import_file(store, "orders", path)
    assert (again.rows_accepted, again.rows_duplicate, again.new_people) == (0, 3, 0)
    assert {t: count(store, t) for t in before} == before
    assert count(store, "import_runs") == 2
    runs = rows(store, "SELECT rows_read, rows_duplicate, file_sha256 FROM import_runs")
    assert {r["file_sha256"] for r in runs} == {again.file_sha256}


def test_customers_reimport_is_idempotent(store: Store, tmp_path: Path) -> None:
    data = [
        {"customer_id": "C1", "first_name": "Anne", "birth_date": date(1980, 5, 17)},
        {"customer_id": "C1", "first_name": "Anne", "birth_date": date(1980, 5, 17)},
    ]
    path = write_file(tmp_path, "customers", "parquet", data)
    first = import_file(store, "customers", path)
    assert (first.rows_accepted, first.rows_duplicate) == (1, 1)
    traits = count(store, "traits")
    second = import_file(store, "customers", path)
    assert (second.rows_accepted, second.rows_duplicate) == (0, 2)
    assert count(store, "traits") == traits == 2
