"""Category breadth, up-sell potential and the engagement scores on a hand-made history, on
both stores; every expected figure is worked out by hand below."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import sqlalchemy as sa

from surmesure.derive.engagement_scores import (
    SCORE_COLUMNS,
    breadth_and_upsell,
    engagement_scores,
    percentile,
    weighted,
)
from surmesure.derive.export import export_derived
from surmesure.derive.report import write_report
from surmesure.derive.rfm import rfm
from surmesure.derive.run import derive
from surmesure.derive.source import ibis_backend, person_orders
from surmesure.store import Store, schema

pytestmark = pytest.mark.filterwarnings(
    "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
)

AS_OF = date(2024, 3, 31)
WINDOW = 90  # purchases after 2024-01-01 count per month
NOW = datetime(2024, 4, 1, 6, 0)
T0 = datetime(2023, 1, 1)
# person -> customer id: A..F are 1..6, 7 is not identified, 8 is identified with no activity
CUSTOMERS = {1: "A", 2: "B", 3: "C", 4: "D", 5: "E", 6: "F", 7: None, 8: "H"}
PRODUCTS = {"P1": "shoes", "P2": "bags", "P3": "hats", "P4": None}  # PX is unknown

# (order_id, person, day, is_return, [(product, amount, is_fee)])
ORDERS: list[tuple[str, int, str, bool, Sequence[tuple[str, float, bool]]]] = [
    ("A1", 1, "2024-03-30", False, [("P1", 10, False)]),
    ("B1", 2, "2024-01-10", False, [("P1", 40, False)]),
    ("B2", 2, "2024-01-20", False, [("P2", 40, False)]),
    ("B3", 2, "2024-02-09", False, [("P2", 30, False), ("PX", 10, False), ("FEE", 5, True)]),
    ("B4", 2, "2024-02-29", False, [("P4", 40, False)]),
    ("B5", 2, "2024-03-20", False, [("P1", 40, False)]),
    ("C1", 3, "2023-12-10", False, [("P1", 100, False)]),
    ("C2", 3, "2024-01-10", False, [("P2", 100, False)]),
    ("C3", 3, "2024-02-10", False, [("P3", 50, False)]),
    ("C4", 3, "2024-03-10", False, [("P3", 50, False)]),
    ("D1", 4, "2024-01-05", False, [("P3", 40, False)]),
    ("D2", 4, "2024-02-20", False, [("P1", 40, False)]),
    ("D3", 4, "2024-03-01", True, [("P2", -10, False)]),  # a return: no breadth, no basket
    ("E1", 5, "2023-11-01", False, [("P4", 20, False)]),
    ("E2", 5, "2023-12-01", False, [("P4", 20, False)]),
    ("E3", 5, "2024-01-20", False, [("PX", 20, False)]),
    ("F1", 6, "2024-02-01", True, [("P1", -15, False)]),  # only a return: not a buyer
    ("G1", 7, "2024-03-01", False, [("P2", 500, False)]),  # not identified
    ("A2", 1, "2024-04-02", False, [("P2", 999, False)]),  # after as_of
]  # fmt: skip
# (person, kind, campaign, day)
EMAILS = [
    (1, "sent", "c1", "2024-03-01"), (1, "sent", "c2", "2024-03-15"),
    (1, "opened", "c1", "2024-03-02"),
    (2, "sent", "c1", "2024-03-01"), (2, "sent", "c2", "2024-03-15"),
    (2, "opened", "c1", "2024-03-02"), (2, "opened", "c2", "2024-03-16"),
    (2, "clicked", "c1", "2024-03-02"),
    (3, "sent", "c1", "2024-03-01"),
    (6, "sent", "c1", "2024-03-01"), (6, "opened", "c1", "2024-03-03"),
    (6, "clicked", "c1", "2024-03-03"),
]  # fmt: skip

# By hand (see surmesure.derive.rfm): recency 1, 11, 21, 40, 71 days for A..E; frequency
# 1, 5, 4, 2, 3; net value 10, 200, 300, 70, 60 -> R 5, 4, 3, 2, 1; F 1, 5, 4, 2, 3;
# M 1, 4, 5, 3, 2; FM 1, 5, 5, 3, 3 -> A New, B and C Loyal, D and E At risk.
SEGMENTS = {1: "New", 2: "Loyal", 3: "Loyal", 4: "At risk", 5: "At risk"}
# categories: A shoes; B shoes, bags (P4 has none, PX is unknown); C shoes, bags, hats;
# D hats, shoes (the returned bag does not count); E none known
BREADTH = {1: 1, 2: 2, 3: 3, 4: 2, 5: 0}
# baskets: B 200/5 = 40 < C 300/4 = 75; E 60/3 = 20 < D 80/2 = 40; A alone in its segment
UPSELL = {1: None, 2: 1.0, 3: 0.0, 4: 0.0, 5: 1.0}

# Mid-rank percentiles within the run (7 identified people):
# open rate  C 0, A 1/2, B 1, F 1           -> C 1/8, A 3/8, B and F 6/8
# click rate A 0, C 0, B 1/2, F 1           -> A and C 2/8, B 5/8, F 7/8
# days since A 1, B 11, C 21, F 28, D 30, E 71 -> inverted A 5.5/6 .. E 0.5/6
RELATIONAL = {
    1: 0.3 * 3 / 8 + 0.4 * 2 / 8 + 0.3 * 5.5 / 6,
    2: 0.3 * 6 / 8 + 0.4 * 5 / 8 + 0.3 * 4.5 / 6,
    3: 0.3 * 1 / 8 + 0.4 * 2 / 8 + 0.3 * 3.5 / 6,
    4: 1.5 / 6,  # no e-mail: recency alone
    5: 0.5 / 6,
    6: 0.3 * 6 / 8 + 0.4 * 7 / 8 + 0.3 * 2.5 / 6,
}
# Buyers only. Purchases in the window A 1, B 5, C 3, D 2, E 1 -> A and E 1/5, D 2.5/5,
# C 3.5/5, B 4.5/5. Regularity (CV of gaps): C (31, 31, 29) < B (10, 20, 20, 20) < E (30, 50),
# A and D have fewer than two gaps -> inverted C 5/6, B 3/6, E 1/6. Breadth E 0, A 1, B and
# D 2, C 3 -> E 0.5/5, A 1.5/5, B and D 3/5, C 4.5/5.
TRANSACTIONAL = {
    1: (0.5 * 1 / 5 + 0.25 * 1.5 / 5) / 0.75,
    2: 0.5 * 4.5 / 5 + 0.25 * 3 / 6 + 0.25 * 3 / 5,
    3: 0.5 * 3.5 / 5 + 0.25 * 5 / 6 + 0.25 * 4.5 / 5,
    4: (0.5 * 2.5 / 5 + 0.25 * 3 / 5) / 0.75,
    5: 0.5 * 1 / 5 + 0.25 * 1 / 6 + 0.25 * 0.5 / 5,
}


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text + " 10:00")


def load(store: Store) -> None:
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
        schema.products: [
            {"product_code": code, "name": code, "category": category, "price": 1.0,
             "updated_at": T0}
            for code, category in PRODUCTS.items()
        ],
        schema.orders: [
            {"order_id": o, "person_id": p, "node_id": p, "ordered_at": _day(day),
             "is_return": ret, "total_amount": sum(a for _, a, _ in lines), "source": "test"}
            for o, p, day, ret, lines in ORDERS
        ],
        schema.order_lines: [
            {"order_id": o, "line_no": n, "product_code": code, "quantity": 1,
             "unit_price": float(a), "amount": float(a), "is_fee": fee}
            for o, _, _, _, lines in ORDERS
            for n, (code, a, fee) in enumerate(lines, start=1)
        ],
        schema.channel_activity: [
            {"activity_id": f"M{i}", "person_id": p, "node_id": p, "channel": "email",
             "kind": kind, "campaign": campaign, "occurred_at": _day(day), "source": "test"}
            for i, (p, kind, campaign, day) in enumerate(EMAILS)
        ],
    }  # fmt: skip
    with store.begin() as conn:
        for table, values in rows.items():
            conn.execute(table.insert(), values)


@pytest.fixture
def history(store: Store) -> Store:
    load(store)
    return store


def test_breadth_and_upsell_by_hand(history: Store) -> None:
    with ibis_backend(history) as backend:
        orders = person_orders(backend, AS_OF)
        scored = rfm(backend, AS_OF, orders)
        segments = {r["person_id"]: r["rfm_segment"] for r in scored.to_pyarrow().to_pylist()}
        rows = breadth_and_upsell(backend, orders, scored).to_pyarrow().to_pylist()
    assert segments == SEGMENTS
    assert {r["person_id"]: r["category_breadth"] for r in rows} == BREADTH
    assert {r["person_id"]: r["upsell_potential"] for r in rows} == UPSELL


def test_derive_stores_the_scores(history: Store) -> None:
    result = derive(history, as_of=AS_OF, window_days=WINDOW, now=NOW)
    assert result.people == 7 and result.buyers == 5
    with history.connect() as conn:
        rows = {
            r.person_id: r
            for r in conn.execute(
                sa.text("SELECT * FROM derived_metrics WHERE computed_on = :d"),
                {"d": NOW.date()},
            )
        }
    assert set(rows) == {1, 2, 3, 4, 5, 6, 8}
    assert {p: r.category_breadth for p, r in rows.items()} == {**BREADTH, 6: None, 8: None}
    assert {p: r.upsell_potential for p, r in rows.items()} == {**UPSELL, 6: None, 8: None}
    for person, row in rows.items():
        relational = RELATIONAL.get(person)
        transactional = TRANSACTIONAL.get(person)
        parts = [x for x in (relational, transactional) if x is not None]
        overall = 100 * sum(parts) / len(parts) if parts else None
        for got, want in (
            (row.relational_engagement, relational),
            (row.transactional_engagement, transactional),
        ):
            assert got == (None if want is None else pytest.approx(100 * want)), person
        assert row.engagement_score == (None if overall is None else pytest.approx(overall))
    # B and F tie on relational engagement; C leads on transactional
    assert rows[2].relational_engagement == pytest.approx(70.0)
    assert rows[6].engagement_score == pytest.approx(70.0)  # relational alone


def test_percentile_ties_and_gaps() -> None:
    values = np.array([3.0, np.nan, 1.0, 3.0, 2.0])
    assert percentile(values)[[0, 2, 3, 4]].tolist() == [0.75, 0.125, 0.75, 0.375]
    assert np.isnan(percentile(values)[1])
    assert np.isnan(percentile(np.array([np.nan]))).all()


def test_weights_are_renormalized_over_known_parts() -> None:
    a = np.array([1.0, np.nan, np.nan, 0.5])
    b = np.array([0.0, 0.5, np.nan, 0.5])
    got = weighted([(a, 3.0), (b, 1.0)])
    assert got[[0, 1, 3]].tolist() == [75.0, 50.0, 50.0]
    assert np.isnan(got[2])


def test_scores_of_people_without_any_component_are_null() -> None:
    empty = pa.table(
        {
            name: pa.nulls(2, pa.float64())
            for name in (
                "frequency", "open_rate", "click_rate", "days_since_interaction",
                "purchases_per_month", "gap_regularity", "category_breadth",
            )
        }
    )  # fmt: skip
    scores = engagement_scores(empty)
    assert all(column.null_count == 2 for column in scores.values())


def test_report_and_export_show_the_scores(duckdb_store: Store, tmp_path: Path) -> None:
    load(duckdb_store)
    derive(duckdb_store, as_of=AS_OF, window_days=WINDOW, now=NOW)
    result = write_report(duckdb_store, tmp_path / "report.html")
    assert "Engagement by segment" in result.figures
    page = (tmp_path / "report.html").read_text()
    # one box per segment with a score, labelled with the people it holds
    for label in ("New (1)", "Loyal (2)", "At risk (2)"):
        assert label in page, label
    assert export_derived(duckdb_store, tmp_path / "derived.csv") == 7
    exported = pacsv.read_csv(tmp_path / "derived.csv").to_pylist()
    by_person = {row["person_id"]: row for row in exported}
    assert by_person[3]["category_breadth"] == 3 and by_person[2]["upsell_potential"] == 1.0
    for column in SCORE_COLUMNS:
        assert by_person[2][column] is not None and by_person[8][column] is None
    assert by_person[2]["relational_engagement"] == pytest.approx(70.0)
