"""A small shop for film tests: stores, products in stock, customers with first names and
home stores, and orders whose monthly sums the tests compute again from :data:`ORDERS`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from import_helpers import write_file

from surmesure.collect import sink
from surmesure.collect.importer import import_file
from surmesure.store import Store, open_store, schema
from surmesure.unify.profile import find_person

NOW = datetime(2026, 3, 10, 12, 0, 0)
STORES = [
    ("S1", "Boutique Lyon", "Lyon", "69001", 45.76, 4.83),
    ("S2", "Boutique Nantes", "Nantes", "44000", 47.22, -1.55),
]
PRODUCTS = {
    "P1": ("Foulard en soie", "accessoires", 39.0),
    "P2": ("Pull en laine", "mode", 79.0),
    "P3": ("Bougie parfumée", "maison", 19.5),
    "P4": ("Carnet relié", "papeterie", 12.0),
    "P5": ("Tasse en grès", "maison", 16.0),
}
# customer -> (first name or None, home store or None)
CUSTOMERS = {
    "C1": ("Marie", "S2"),
    "C2": ("Paul", None),
    "C3": (None, None),
}
# (order, customer, ordered_at, store, [(product, quantity)]); a negative quantity: a return
ORDERS: list[tuple[str, str, str, str, list[tuple[str, int]]]] = [
    ("o1", "C1", "2025-04-12 10:00:00", "S1", [("P1", 1), ("P3", 2)]),
    ("o2", "C1", "2025-07-03 15:00:00", "S1", [("P2", 1)]),
    ("o3", "C1", "2025-07-20 11:00:00", "online", [("P4", 3)]),
    ("R3", "C1", "2025-07-25 11:00:00", "online", [("P4", -1)]),
    ("o4", "C1", "2026-02-14 16:00:00", "S2", [("P5", 2), ("P1", 1)]),
    ("o5", "C1", "2024-12-01 09:00:00", "S2", [("P2", 1)]),  # before the chart's year
    ("o6", "C2", "2025-10-05 10:00:00", "S1", [("P3", 1)]),
    ("o7", "C2", "2025-11-05 10:00:00", "S1", [("P5", 1)]),
    ("o8", "C2", "2026-01-05 10:00:00", "S2", [("P4", 1)]),
    ("o9", "C3", "2026-03-01 10:00:00", "S2", [("P3", 1)]),
]
MAPPING = "kind: orders\nrules:\n  returns: {order_id_prefix: R}\n"


def load_world(store: Store, directory: Path) -> None:
    """Import the shop into ``store`` (files written in ``directory``)."""
    stores = [
        {"store_id": s, "name": n, "city": c, "postcode": p, "country": "FR", "latitude": la,
         "longitude": lo}
        for s, n, c, p, la, lo in STORES
    ]  # fmt: skip
    import_file(store, "stores", write_file(directory, "stores", "csv", stores))
    products = [
        {"product_code": code, "name": name, "category": category, "price": price}
        for code, (name, category, price) in PRODUCTS.items()
    ]
    import_file(store, "products", write_file(directory, "products", "csv", products))
    stock = [
        {"product_code": p, "store_id": s, "quantity": 10, "updated_at": "2026-01-01 00:00:00"}
        for p in PRODUCTS
        for s in ("online", "S1", "S2")
    ]
    import_file(store, "stock", write_file(directory, "stock", "csv", stock))
    observed = (NOW - timedelta(days=10)).isoformat(sep=" ")
    customers = [
        {"customer_id": c, "first_name": name, "home_store_id": home, "observed_at": observed}
        for c, (name, home) in CUSTOMERS.items()
    ]
    import_file(store, "customers", write_file(directory, "customers", "csv", customers))
    lines = [
        {"order_id": o, "customer_id": c, "ordered_at": at, "store_id": s, "product_code": p,
         "quantity": q, "unit_price": PRODUCTS[p][2]}
        for o, c, at, s, items in ORDERS
        for p, q in items
    ]  # fmt: skip
    mapping = directory / "orders.yaml"
    mapping.write_text(MAPPING)
    import_file(store, "orders", write_file(directory, "orders", "csv", lines), mapping=mapping)


def open_shop(migrated: Path, folder: Path) -> tuple[Store, str]:
    """A copy of the migrated DuckDB file ``migrated`` in ``folder`` holding the shop, and its
    URL."""
    from conftest import copy_store
    from surmesure.decide.recommend import model

    url = copy_store(migrated, folder)
    store = open_store(url)
    load_world(store, folder)
    model.clear_cache()
    return store, url


@pytest.fixture(scope="module", name="shop")
def shop_fixture(
    migrated_duckdb: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, str]]:
    """The shop in a DuckDB file for a test module (which imports this fixture), and its URL;
    tests add people to it, never change those of the shop."""
    store, url = open_shop(migrated_duckdb, tmp_path_factory.mktemp("video_shop"))
    yield store, url
    store.dispose()


def frame(mp4: Path, at: float, size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """The RGB picture of the film ``mp4`` at ``at`` seconds, decoded by ffmpeg."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", str(at), "-i", str(mp4), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 3).astype(np.int16)


def person_id(store: Store, customer: str) -> int:
    with store.connect() as conn:
        return find_person(conn, f"customer_id:{customer}").person_id


def add_person(store: Store, person_id: int, traits: dict[str, object], reliability: float) -> None:
    """A person holding ``traits`` from the CRM, observed at :data:`NOW` (sealed ones sealed)."""
    with store.begin() as conn:
        conn.execute(
            schema.people.insert().values(
                person_id=person_id, merged_into=None, created_at=NOW, updated_at=NOW
            )
        )
        names = list(traits)
        sink.write_traits(
            store,
            conn,
            record_keys=[f"{person_id}:{name}" for name in names],
            person_ids=[person_id] * len(names),
            node_ids=[person_id] * len(names),
            traits=[{name: traits[name]} for name in names],
            sources=["crm"] * len(names),
            observed_at=[NOW] * len(names),
            reliabilities=[reliability] * len(names),
        )


def refuse_personalization(store: Store, person_id: int) -> None:
    with store.begin() as conn:
        conn.execute(
            schema.consents.insert().values(
                consent_id=f"refusal-{person_id}", person_id=person_id, node_id=person_id,
                purpose="personalization", channel="any", granted=False,
                recorded_at=NOW - timedelta(days=1), source="crm",
            )
        )  # fmt: skip


def monthly_spend(customer: str, months: list[tuple[int, int]]) -> list[float]:
    """The customer's spend per ``(year, month)`` of ``months``, from :data:`ORDERS`."""
    out = []
    for year, month in months:
        total = 0.0
        for _, c, at, _, items in ORDERS:
            when = datetime.fromisoformat(at)
            if c == customer and (when.year, when.month) == (year, month) and when <= NOW:
                total += sum(PRODUCTS[p][2] * q for p, q in items)
        out.append(round(total, 2))
    return out


def next_person_id(store: Store) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(schema.people.c.person_id))).scalar()) + 1
