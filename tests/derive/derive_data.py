"""Order histories written straight into a store: a tiny hand-made one and CDNOW."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa

from surmesure.protect import blind
from surmesure.store import Store, schema

# (order_id, person_id or None, ordered_at, is_return, [(amount, is_fee), ...])
Order = tuple[str, int | None, str, bool, Sequence[tuple[float, bool]]]

CREATED = datetime(2023, 1, 1)


def load_orders(store: Store, customers: dict[int, str | None], orders: Sequence[Order]) -> None:
    """People (``customers``: person id -> customer id, None for a person without one), their
    identifiers, and ``orders`` with their lines, written with the store's bulk path."""
    ids = list(customers)
    people = pa.table(
        {
            "person_id": pa.array(ids, pa.int64()),
            "merged_into": pa.nulls(len(ids), pa.int64()),
            "created_at": pa.array([CREATED] * len(ids), pa.timestamp("us")),
            "updated_at": pa.array([CREATED] * len(ids), pa.timestamp("us")),
        }
    )
    kinds = [("customer_id", p, c) for p, c in customers.items() if c is not None]
    kinds += [("email", p, f"p{p}@example.org") for p in ids]
    identifiers = pa.table(
        {
            "kind": [k for k, _, _ in kinds],
            "value": [v for _, _, v in kinds],
            "person_id": pa.array([p for _, p, _ in kinds], pa.int64()),
            "node_id": pa.array([p for _, p, _ in kinds], pa.int64()),
            "source": ["test"] * len(kinds),
            "first_seen_at": pa.array([CREATED] * len(kinds), pa.timestamp("us")),
        }
    )
    order_rows = pa.table(
        {
            "order_id": [o[0] for o in orders],
            "person_id": pa.array([o[1] for o in orders], pa.int64()),
            "node_id": pa.array([o[1] for o in orders], pa.int64()),
            "ordered_at": pa.array(
                [datetime.fromisoformat(o[2]) for o in orders], pa.timestamp("us")
            ),
            "is_return": [o[3] for o in orders],
            "total_amount": [sum(a for a, _ in o[4]) for o in orders],
            "source": ["test"] * len(orders),
        }
    )
    lines = [(o[0], n, a, fee) for o in orders for n, (a, fee) in enumerate(o[4], start=1)]
    line_rows = pa.table(
        {
            "order_id": [line[0] for line in lines],
            "line_no": pa.array([line[1] for line in lines], pa.int32()),
            "product_code": ["FEE" if line[3] else "P1" for line in lines],
            "quantity": pa.array([1] * len(lines), pa.int32()),
            "unit_price": [line[2] for line in lines],
            "amount": [line[2] for line in lines],
            "is_fee": [line[3] for line in lines],
        }
    )
    with store.begin() as conn:
        for table, data in (
            (schema.people, people),
            (
                schema.identifiers,
                blind.at_rest(store, conn, schema.identifiers, identifiers, CREATED),
            ),
            (schema.orders, order_rows),
            (schema.order_lines, line_rows),
        ):
            store.bulk_insert(conn, table, data, on_conflict="error")


def read_cdnow(path: Path) -> list[tuple[int, str, float]]:
    """CDNOW sample rows as (customer, YYYY-MM-DD, dollars)."""
    rows = []
    for line in path.read_text().split("\n"):
        if line.strip():
            master, _sample, day, _cds, dollars = line.split()
            rows.append((int(master), f"{day[:4]}-{day[4:6]}-{day[6:]}", float(dollars)))
    return rows


def load_cdnow(store: Store, path: Path) -> list[tuple[int, str, float]]:
    """Every CDNOW transaction as one order of one line; person id = master id."""
    rows = read_cdnow(path)
    customers: dict[int, str | None] = {m: f"{m:05d}" for m, _, _ in rows}
    orders: list[Order] = [
        (f"T{i}", m, f"{day} 12:00:00", False, [(dollars, False)])
        for i, (m, day, dollars) in enumerate(rows)
    ]
    load_orders(store, customers, orders)
    return rows


# A tiny history whose RFM figures are worked out by hand below.
AS_OF = date(2024, 3, 31)
CUSTOMERS: dict[int, str | None] = {
    1: "C1",
    2: "C2",
    3: "C3",
    4: "C4",
    5: "C5",
    6: None,  # not identified: ignored
    7: "C7",
}
TINY: list[Order] = [
    ("A1", 1, "2024-03-30 10:00:00", False, [(20.0, False), (5.0, True)]),
    ("A2", 1, "2024-01-15 09:00:00", False, [(30.0, False)]),
    ("B1", 2, "2024-02-01 12:00:00", False, [(100.0, False)]),
    ("B2", 2, "2024-02-10 12:00:00", True, [(-40.0, False)]),
    ("C1", 3, "2023-12-01 08:00:00", False, [(10.0, False)]),
    ("C2", 3, "2023-12-01 18:00:00", False, [(15.0, False)]),
    ("C3", 3, "2024-03-01 08:00:00", False, [(25.0, False), (3.0, True)]),
    ("D1", 4, "2024-03-31 23:30:00", False, [(8.0, False), (2.0, True)]),
    ("D2", 4, "2024-04-02 10:00:00", False, [(900.0, False)]),  # after as_of
    ("E1", 5, "2024-02-01 10:00:00", True, [(-12.0, False)]),  # only a return
    ("F1", 6, "2024-03-01 10:00:00", False, [(70.0, False)]),
    ("G1", 7, "2023-12-22 10:00:00", False, [(500.0, False)]),
    ("X1", None, "2024-03-20 10:00:00", False, [(44.0, False)]),  # anonymous
]

# Worked out by hand from TINY (see the module docstring of surmesure.derive.rfm):
# R order (worst first): 7 (100 d), 2 (59), 3 (30), 1 (1), 4 (0)
# F order: frequency 1 -> 4 (8), 2 (60), 7 (500) by cents; then 1 (2 orders), 3 (3 orders)
# M order: 4 (8), 1 (50, 2 orders), 3 (50, 3 orders), 2 (60), 7 (500)
EXPECTED = {
    # person: (recency, frequency, monetary, R, F, M, FM, segment)
    1: (1, 2, 50.0, 4, 4, 2, 3, "Potential loyalist"),
    2: (59, 1, 60.0, 2, 2, 4, 3, "At risk"),
    3: (30, 3, 50.0, 3, 5, 3, 4, "Loyal"),
    4: (0, 1, 8.0, 5, 1, 1, 1, "New"),
    7: (100, 1, 500.0, 1, 3, 5, 4, "At risk"),
}


def load_activity(
    store: Store, rows: Sequence[tuple[str, int | None, str, str | None, str]]
) -> None:
    """E-mail activity: (activity_id, person_id, kind, campaign, occurred_at)."""
    data = pa.table(
        {
            "activity_id": [r[0] for r in rows],
            "person_id": pa.array([r[1] for r in rows], pa.int64()),
            "node_id": pa.array([r[1] for r in rows], pa.int64()),
            "channel": ["email"] * len(rows),
            "kind": [r[2] for r in rows],
            "campaign": pa.array([r[3] for r in rows], pa.string()),
            "occurred_at": pa.array(
                [datetime.fromisoformat(r[4]) for r in rows], pa.timestamp("us")
            ),
            "source": ["test"] * len(rows),
        }
    )
    with store.begin() as conn:
        store.bulk_insert(conn, schema.channel_activity, data, on_conflict="error")


def load_answers(store: Store, rows: Sequence[tuple[str, int | None, str, int, str]]) -> None:
    """Survey answers: (answer_id, person_id, metric, score, answered_at)."""
    data = pa.table(
        {
            "answer_id": [r[0] for r in rows],
            "person_id": pa.array([r[1] for r in rows], pa.int64()),
            "node_id": pa.array([r[1] for r in rows], pa.int64()),
            "metric": [r[2] for r in rows],
            "score": pa.array([r[3] for r in rows], pa.int16()),
            "answered_at": pa.array(
                [datetime.fromisoformat(r[4]) for r in rows], pa.timestamp("us")
            ),
            "source": ["test"] * len(rows),
        }
    )
    with store.begin() as conn:
        store.bulk_insert(conn, schema.survey_answers, data, on_conflict="error")
