"""A tiny shop whose co-purchase figures are computed by hand in the tests.

Baskets before AS_OF (fee lines "POST", the return R1 and the fee-only order o6 are not
baskets; o9 comes after AS_OF):

    o1 C1 A B C   o2 C2 A B   o3 C3 A C D   o4 C4 B D   o5 anon A B
    o7 C5 E F     o8 C6 G H E
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from import_helpers import write_file

from surmesure.collect.importer import import_file
from surmesure.store import Store

AS_OF = datetime(2024, 6, 1)

PRODUCTS = {
    "A": ("Mug", "kitchen", 8.0),
    "B": ("Tea", "grocery", 4.0),
    "C": ("Spoon", "kitchen", 3.0),
    "D": ("Candle", "decor", 12.0),
    "E": ("Vase", "decor", 20.0),
    "F": ("Plate", "kitchen", 9.0),
    "G": ("Frame", "decor", 15.0),
    "H": ("Bowl", "kitchen", 7.0),
}

ORDERS: list[tuple[str, str | None, str, list[str]]] = [
    ("o1", "C1", "2024-05-01 10:00:00", ["A", "B", "C", "POST"]),
    ("o2", "C2", "2024-05-02 10:00:00", ["A", "B"]),
    ("o3", "C3", "2024-05-03 10:00:00", ["A", "C", "D"]),
    ("o4", "C4", "2024-05-04 10:00:00", ["B", "D"]),
    ("o5", None, "2024-05-05 10:00:00", ["A", "B", "POST"]),
    ("o6", None, "2024-05-06 10:00:00", ["POST"]),
    ("R1", "C4", "2024-05-07 10:00:00", ["A", "C"]),
    ("o7", "C5", "2024-05-08 10:00:00", ["E", "F"]),
    ("o8", "C6", "2024-05-09 10:00:00", ["G", "H", "E"]),
    ("o9", "C4", "2024-07-01 10:00:00", ["G", "E", "F"]),
]

HOME_STORES = {"C1": "S1", "C2": "S2"}

# (product, store, quantity, updated_at): E only at S2, F only at S1, G online, D out at S1,
# H has no stock row known at AS_OF (its row is dated after it)
STOCK = [
    ("E", "S1", 0, "2024-05-20 00:00:00"),
    ("E", "online", 0, "2024-05-20 00:00:00"),
    ("E", "S2", 5, "2024-05-20 00:00:00"),
    ("F", "S1", 3, "2024-05-20 00:00:00"),
    ("G", "online", 2, "2024-05-20 00:00:00"),
    ("D", "S1", 0, "2024-05-20 00:00:00"),
    ("H", "online", 0, "2024-06-15 00:00:00"),
]

MAPPING = """
kind: orders
rules:
  returns: {order_id_prefix: R}
  fees: {codes: [POST]}
"""


def baskets() -> list[set[str]]:
    """The baskets as the docstring lists them, from the world's own definition."""
    return [
        {p for p in lines if p != "POST"}
        for order_id, _, at, lines in ORDERS
        if not order_id.startswith("R")
        and datetime.fromisoformat(at) < AS_OF
        and any(p != "POST" for p in lines)
    ]


def load_world(store: Store, directory: Path) -> None:
    products = [
        {"product_code": code, "name": name, "category": category, "price": price}
        for code, (name, category, price) in PRODUCTS.items()
    ]
    import_file(store, "products", write_file(directory, "products", "csv", products))
    customers = [
        {"customer_id": f"C{i}", "home_store_id": HOME_STORES.get(f"C{i}")} for i in range(1, 7)
    ]
    for row in customers:
        row["observed_at"] = "2024-01-01 00:00:00"
        if row["home_store_id"] is None:
            row["first_name"] = row["customer_id"]
    import_file(store, "customers", write_file(directory, "customers", "csv", customers))
    lines = [
        {
            "order_id": order_id,
            "customer_id": customer,
            "ordered_at": at,
            "product_code": code,
            "quantity": -1 if order_id.startswith("R") else 1,
            "unit_price": 1.0,
        }
        for order_id, customer, at, codes in ORDERS
        for code in codes
    ]
    mapping = directory / "orders.yaml"
    mapping.write_text(MAPPING)
    import_file(store, "orders", write_file(directory, "orders", "csv", lines), mapping=mapping)
    stock = [
        {"product_code": p, "store_id": s, "quantity": q, "updated_at": u} for p, s, q, u in STOCK
    ]
    import_file(store, "stock", write_file(directory, "stock", "csv", stock))


def person_id(store: Store, customer: str) -> int:
    from surmesure.unify.profile import find_person

    with store.connect() as conn:
        return find_person(conn, f"customer_id:{customer}").person_id
