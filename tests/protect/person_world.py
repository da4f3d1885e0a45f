"""A small world of people written as import files: Ana known to the shop by her card and
e-mail and to the CRM by her customer id and phone (one CRM row links the two, so they merge),
and Bo, known to both under one e-mail. Each has orders, a survey answer, e-mail activity and
consents; one refused row of each carries the person's e-mail into the quarantine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from import_helpers import write_file

from surmesure.collect.importer import ImportResult, import_file
from surmesure.protect import blind
from surmesure.store import Store

ANA = {
    "email": "ana.martin@example.org",
    "phone": "+33612345678",
    "customer_id": "CUST-ANA-7781",
    "loyalty_card": "CARD-ANA-5512",
}
BO = {
    "email": "bo.durand@example.net",
    "customer_id": "CUST-BO-4410",
    "loyalty_card": "CARD-BO-7730",
}

SHOP_CUSTOMERS = [
    {
        "loyalty_card": ANA["loyalty_card"],
        "email": "Ana.Martin@Example.org",
        "first_name": "Anna",
        "city": "Lyon",
        "observed_at": "2024-01-10 09:00:00",
    },
    {
        "loyalty_card": BO["loyalty_card"],
        "email": BO["email"],
        "first_name": "Bo",
        "city": "Paris",
        "observed_at": "2024-01-10 09:00:00",
    },
]
CRM_CUSTOMERS = [
    {
        "customer_id": ANA["customer_id"],
        "phone": "06 12 34 56 78",
        "first_name": "Ana",
        "city": "Lyon",
        "observed_at": "2024-03-01 09:00:00",
    },
    {"customer_id": ANA["customer_id"], "email": ANA["email"]},  # the link: a merge
    {
        "customer_id": BO["customer_id"],
        "email": BO["email"],
        "first_name": "Bob",
        "observed_at": "2024-03-01 09:00:00",
    },
    {"customer_id": "CUST-ANA-7781", "email": " ANA.MARTIN@example.org", "birth_date": "soon"},
]


def _line(order_id: str, n: int, price: float, **who: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "ordered_at": "2024-04-02 10:00:00",
        "product_code": f"P{n}",
        "description": f"Product {n}",
        "quantity": 1 if not order_id.startswith("R") else -1,
        "unit_price": price,
        "is_return": order_id.startswith("R"),
        **who,
    }


ORDERS = [
    _line("A-1001", 1, 10.0, customer_id=ANA["customer_id"]),
    _line("A-1001", 2, 5.5, customer_id=ANA["customer_id"]),
    _line("A-1002", 3, 20.0, loyalty_card=ANA["loyalty_card"]),
    _line("R-1003", 1, 10.0, customer_id=ANA["customer_id"]),
    _line("B-2001", 2, 7.25, customer_id=BO["customer_id"]),
    _line("X-3001", 3, 3.0),  # anonymous
]
SURVEYS = [
    {"email": ANA["email"], "metric": "nps", "score": 9, "answered_at": "2024-04-05 12:00:00"},
    {
        "customer_id": BO["customer_id"],
        "metric": "csat",
        "score": 4,
        "answered_at": "2024-04-05 12:00:00",
    },
    {"email": "Bo.Durand@example.net", "metric": "nps", "score": 42, "answered_at": "2024-04-06"},
]
EMAIL = [
    {"email": ANA["email"], "kind": "opened", "campaign": "spring", "occurred_at": "2024-04-01"},
    {"email": BO["email"], "kind": "clicked", "campaign": "spring", "occurred_at": "2024-04-01"},
]
CONSENTS = [
    {
        "email": ANA["email"],
        "purpose": "marketing",
        "channel": "email",
        "granted": True,
        "recorded_at": "2024-01-01 08:00:00",
    },
    {
        "phone": "+33 6 12 34 56 78",
        "purpose": "marketing",
        "channel": "email",
        "granted": False,
        "recorded_at": "2024-02-01 08:00:00",
    },
    {
        "email": BO["email"],
        "purpose": "marketing",
        "channel": "sms",
        "granted": True,
        "recorded_at": "2024-01-01 08:00:00",
    },
]

FILES: list[tuple[str, str, str, list[dict[str, Any]]]] = [
    ("customers", "customers_shop", "shop", SHOP_CUSTOMERS),
    ("customers", "customers_crm", "crm", CRM_CUSTOMERS),
    ("orders", "orders", "shop", ORDERS),
    ("surveys", "surveys", "survey", SURVEYS),
    ("email", "email_activity", "email", EMAIL),
    ("consents", "consents", "crm", CONSENTS),
]


def write_world(directory: Path) -> list[tuple[str, Path, str]]:
    """The world's files, in import order: (kind, path, source)."""
    return [
        (kind, write_file(directory, name, "csv", rows), source)
        for kind, name, source, rows in FILES
    ]


def import_world(store: Store, files: list[tuple[str, Path, str]]) -> list[ImportResult]:
    return [import_file(store, kind, path, source=source) for kind, path, source in files]


def person_of(store: Store, kind: str, value: str) -> int:
    with store.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT person_id FROM identifiers WHERE kind = :k AND value = :v"),
                {"k": kind, "v": blind.index(store, kind, value)},
            ).scalar_one()
        )


def count_where(store: Store, table: str, where: str, **params: Any) -> int:
    with store.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {where}"), params
            ).scalar_one()
        )
