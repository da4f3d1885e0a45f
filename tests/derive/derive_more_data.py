"""A tiny shop written straight into a store: stores with coordinates, products with
categories, orders in stores and online, home-store traits, channel activity, web events and
survey answers; every figure the tests expect is worked out by hand from these rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from surmesure.store import Store, schema

AS_OF = date(2024, 3, 31)
T0 = datetime(2023, 1, 1)

# store id -> (latitude, longitude) or None
STORES: dict[str, tuple[float, float] | None] = {
    "S1": (48.8566, 2.3522),  # Paris
    "S2": (45.7640, 4.8357),  # Lyon
    "S3": None,
    "online": None,
}
PRODUCTS: dict[str, str | None] = {
    "P1": "shoes",
    "P2": "bags",
    "P3": "hats",
    "P4": "socks",
    "P5": None,
}
CUSTOMERS: dict[int, str | None] = {1: "C1", 2: "C2", 3: "C3", 4: "C4", 5: "C5", 6: None}

# (order_id, person, ordered_at, is_return, store_id, [(product_code, amount, is_fee)])
ShopOrder = tuple[str, int | None, str, bool, str | None, Sequence[tuple[str, float, bool]]]
ORDERS: list[ShopOrder] = [
    ("O1", 1, "2024-01-10 10:00", False, "S1", [("P1", 50, False), ("P2", 30, False),
                                                 ("FEE", 7, True)]),
    ("O2", 1, "2024-02-10 10:00", False, "S1", [("P2", 40, False)]),
    ("O3", 1, "2024-03-01 10:00", False, "S2", [("P3", 10, False), ("P4", 5, False)]),
    ("O4", 1, "2024-03-05 10:00", True, "S1", [("P2", -20, False)]),
    ("O5", 2, "2024-03-10 10:00", False, "online", [("P5", 100, False)]),
    ("O6", 2, "2024-03-20 10:00", False, "S2", [("P4", 12, False)]),
    ("O7", 2, "2024-04-05 10:00", False, "S1", [("P3", 999, False)]),  # after as_of
    ("O8", 4, "2024-02-01 10:00", False, "S3", [("P1", 20, False)]),
    ("O9", 5, "2024-02-01 10:00", True, "S1", [("P1", -10, False)]),
    ("O10", 6, "2024-02-01 10:00", False, "S1", [("P1", 80, False)]),  # not identified
]  # fmt: skip

# (person, store id, reliability, observed_at)
HOME_TRAITS = [
    (1, "S2", 0.9, "2023-06-01 00:00"),
    (1, "S3", 0.5, "2024-01-01 00:00"),  # later but less reliable
    (3, "S1", 0.8, "2023-06-01 00:00"),
    (4, "S1", 0.8, "2023-06-01 00:00"),
    (5, "S2", 0.8, "2024-05-01 00:00"),  # after as_of
]


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def load_shop(store: Store) -> None:
    """People, identifiers, stores, products, orders and home-store traits."""
    rows: dict[sa.Table, list[dict[str, Any]]] = {
        schema.people: [
            {"person_id": p, "merged_into": None, "created_at": T0, "updated_at": T0}
            for p in CUSTOMERS
        ],
        schema.identifiers: [
            {"kind": "customer_id", "value": c, "person_id": p, "node_id": p, "source": "test",
             "first_seen_at": T0}
            for p, c in CUSTOMERS.items() if c is not None
        ],
        schema.stores: [
            {"store_id": s, "name": s, "latitude": xy[0] if xy else None,
             "longitude": xy[1] if xy else None, "updated_at": T0}
            for s, xy in STORES.items()
        ],
        schema.products: [
            {"product_code": code, "name": code, "category": category, "price": 1.0,
             "updated_at": T0}
            for code, category in PRODUCTS.items()
        ],
        schema.orders: [
            {"order_id": o, "person_id": p, "node_id": p, "store_id": s, "ordered_at": _ts(at),
             "is_return": ret, "total_amount": sum(a for _, a, _ in lines), "source": "test",
             "channel": "web" if s == "online" else "store"}
            for o, p, at, ret, s, lines in ORDERS
        ],
        schema.order_lines: [
            {"order_id": o, "line_no": n, "product_code": code, "quantity": 1,
             "unit_price": float(a), "amount": float(a), "is_fee": fee}
            for o, _, _, _, _, lines in ORDERS
            for n, (code, a, fee) in enumerate(lines, start=1)
        ],
        schema.traits: [
            {"record_key": f"r{i}", "name": "home_store_id", "person_id": p, "node_id": p,
             "value": s, "source": f"src{i}", "observed_at": _ts(at), "reliability": rel}
            for i, (p, s, rel, at) in enumerate(HOME_TRAITS)
        ],
    }  # fmt: skip
    with store.begin() as conn:
        for table, values in rows.items():
            conn.execute(table.insert(), values)


def load_activity(store: Store, rows: Sequence[tuple[str, int, str, str, str | None, str]]) -> None:
    """Channel activity: (activity_id, person, channel, kind, campaign, occurred_at)."""
    with store.begin() as conn:
        conn.execute(
            schema.channel_activity.insert(),
            [
                {"activity_id": a, "person_id": p, "node_id": p, "channel": ch, "kind": k,
                 "campaign": c, "occurred_at": _ts(at), "source": "test"}
                for a, p, ch, k, c, at in rows
            ],
        )  # fmt: skip


def load_events(store: Store, rows: Sequence[tuple[str, int | None, str, str]]) -> None:
    """Web events: (message_id, person, type, occurred_at)."""
    with store.begin() as conn:
        conn.execute(
            schema.events.insert(),
            [
                {"message_id": m, "type": t, "event": "Product Viewed" if t == "track" else None,
                 "person_id": p, "node_id": p, "occurred_at": _ts(at), "received_at": _ts(at),
                 "source": "web"}
                for m, p, t, at in rows
            ],
        )  # fmt: skip


def load_answers(store: Store, rows: Sequence[tuple[str, int | None, str, int, str]]) -> None:
    """Survey answers: (answer_id, person, metric, score, answered_at)."""
    with store.begin() as conn:
        conn.execute(
            schema.survey_answers.insert(),
            [
                {"answer_id": a, "person_id": p, "node_id": p, "metric": m, "score": s,
                 "answered_at": _ts(at), "source": "test"}
                for a, p, m, s, at in rows
            ],
        )  # fmt: skip
