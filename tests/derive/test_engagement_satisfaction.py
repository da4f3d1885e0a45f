"""Engagement and satisfaction on a hand-made history, on both stores."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from derive_data import AS_OF, CUSTOMERS, TINY, load_activity, load_answers, load_orders

from surmesure.derive.engagement import engagement
from surmesure.derive.run import derive
from surmesure.derive.satisfaction import satisfaction, summary
from surmesure.derive.source import ibis_backend
from surmesure.store import Store

pytestmark = pytest.mark.filterwarnings(
    "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
)

WINDOW = 30  # March 2 to March 31, 2024
NOW = datetime(2024, 4, 1, 6, 0)
MONTH = 30.4375 / WINDOW  # one purchase in the window, per month

ACTIVITY = [
    ("M1", 1, "sent", "camp1", "2024-03-05 10:00:00"),
    ("M2", 1, "opened", "camp1", "2024-03-05 12:00:00"),
    ("M3", 1, "opened", "camp1", "2024-03-06 12:00:00"),  # a second open of one message
    ("M4", 1, "clicked", "camp1", "2024-03-06 12:01:00"),
    ("M5", 1, "sent", "camp2", "2024-03-20 10:00:00"),
    ("M6", 1, "sent", "camp3", "2024-02-10 10:00:00"),  # before the window
    ("M7", 1, "opened", "camp3", "2024-03-02 09:00:00"),  # ... opened in it
    ("N1", 7, "sent", "camp1", "2024-03-05 10:00:00"),
    ("N2", 7, "opened", None, "2024-03-28 08:00:00"),  # no campaign: counts alone
    ("N3", 7, "opened", None, "2024-04-02 08:00:00"),  # after as_of
    ("Z1", 6, "opened", "camp1", "2024-03-05 10:00:00"),  # not identified
    ("Z2", None, "opened", "camp1", "2024-03-05 10:00:00"),  # anonymous
]
ANSWERS = [
    ("S1", 1, "nps", 9, "2024-03-01 10:00:00"),
    ("S2", 1, "nps", 6, "2024-03-20 10:00:00"),
    ("S3", 1, "csat", 5, "2024-03-10 10:00:00"),
    ("S4", 1, "csat", 3, "2024-03-12 10:00:00"),
    ("S5", 1, "ces", 2, "2024-03-03 10:00:00"),
    ("S6", 1, "ces", 5, "2024-03-04 10:00:00"),
    ("S7", 2, "nps", 10, "2024-03-15 10:00:00"),
    ("S8", 2, "csat", 4, "2024-03-15 10:05:00"),
    ("S9", 3, "nps", 8, "2024-02-01 10:00:00"),
    ("S10", 3, "nps", 3, "2024-04-05 10:00:00"),  # after as_of
    ("Q1", 4, "nps", 8, "2024-03-25 10:00:00"),
    ("Q2", 4, "nps", 10, "2024-03-25 10:00:00"),  # same instant: the larger id wins
    ("S11", 7, "ces", 7, "2024-01-10 10:00:00"),
    ("S12", 6, "nps", 0, "2024-03-25 10:00:00"),  # not identified
]
# person 8: purchase days Jan 1, Jan 11 and Jan 31 -> gaps 10 and 20, mean 15, sd 5
REGULAR = [
    ("H1", 8, "2024-01-01 10:00:00", False, [(10.0, False)]),
    ("H2", 8, "2024-01-11 10:00:00", False, [(10.0, False)]),
    ("H3", 8, "2024-01-31 10:00:00", False, [(10.0, False)]),
]


@pytest.fixture
def history(store: Store) -> Store:
    load_orders(store, CUSTOMERS, TINY)
    load_orders(store, {8: "C8"}, REGULAR)
    load_activity(store, ACTIVITY)
    load_answers(store, ANSWERS)
    return store


def test_engagement_by_hand(history: Store) -> None:
    with ibis_backend(history) as backend:
        rows = {
            r.pop("person_id"): r
            for r in engagement(backend, AS_OF, WINDOW).to_pyarrow().to_pylist()
        }
    assert set(rows) == {1, 2, 3, 4, 5, 7, 8}
    # (sent, opens, clicks, open rate, click rate, days since interaction)
    expected = {
        1: (2, 2, 1, 1.0, 0.5, 1),  # camp1 + camp2 sent; camp1 + camp3 opened; order Mar 30
        2: (0, 0, 0, None, None, 16),  # answered on Mar 15 (returned goods Feb 10)
        3: (0, 0, 0, None, None, 30),  # order Mar 1; the Apr 5 answer comes later
        4: (0, 0, 0, None, None, 0),
        5: (0, 0, 0, None, None, 59),  # a return on Feb 1
        7: (1, 1, 0, 1.0, 0.0, 3),  # opened on Mar 28
        8: (0, 0, 0, None, None, 60),
    }
    for person, (sent, opens, clicks, open_rate, click_rate, since) in expected.items():
        row = rows[person]
        got = (row["email_sent"], row["email_opens"], row["email_clicks"])
        assert got == (sent, opens, clicks), person
        assert row["open_rate"] == open_rate and row["click_rate"] == click_rate, person
        assert row["days_since_interaction"] == since, person
    per_month = {p: r["purchases_per_month"] for p, r in rows.items()}
    assert per_month == pytest.approx({1: MONTH, 2: 0, 3: 0, 4: MONTH, 5: 0, 7: 0, 8: 0})
    assert rows[8]["gap_regularity"] == pytest.approx(5 / 15)
    assert all(rows[p]["gap_regularity"] is None for p in (1, 2, 3, 4, 5, 7))


def test_satisfaction_by_hand(history: Store) -> None:
    with ibis_backend(history) as backend:
        rows = {
            r.pop("person_id"): r for r in satisfaction(backend, AS_OF).to_pyarrow().to_pylist()
        }
        overall = summary(backend, AS_OF, WINDOW)
    assert set(rows) == {1, 2, 3, 4, 7}
    assert {p: (r["nps_last"], r["nps_group"]) for p, r in rows.items()} == {
        1: (6, "detractor"),
        2: (10, "promoter"),
        3: (8, "passive"),
        4: (10, "promoter"),
        7: (None, None),
    }
    assert rows[1]["csat_satisfied_share"] == 0.5 and rows[2]["csat_satisfied_share"] == 1.0
    assert rows[3]["csat_satisfied_share"] is None
    assert rows[1]["ces_mean"] == pytest.approx(3.5) and rows[7]["ces_mean"] == 7.0
    assert rows[2]["ces_mean"] is None
    # window Mar 2-31: NPS answers 6, 10, 8, 10 -> (2 - 1) / 4; CSAT 5, 3, 4; CES 2, 5
    assert overall.answers == {"nps": 4, "csat": 3, "ces": 2}
    assert overall.nps == pytest.approx(25.0)
    assert overall.csat == pytest.approx(2 / 3)
    assert overall.ces == pytest.approx(3.5)


def test_satisfaction_without_answers(store: Store) -> None:
    load_orders(store, CUSTOMERS, TINY)
    with ibis_backend(store) as backend:
        assert satisfaction(backend, AS_OF).to_pyarrow().num_rows == 0
        overall = summary(backend, AS_OF, WINDOW)
    assert overall.answers == {"nps": 0, "csat": 0, "ces": 0}
    assert overall.nps is None and overall.csat is None and overall.ces is None


def test_derive_stores_engagement_and_satisfaction(history: Store) -> None:
    result = derive(history, as_of=AS_OF, window_days=WINDOW, now=NOW)
    assert result.window_days == WINDOW and result.people == 7
    assert result.satisfaction.nps == pytest.approx(25.0)
    assert result.satisfaction.answers == {"nps": 4, "csat": 3, "ces": 2}
    with history.connect() as conn:
        rows = {
            r.person_id: r
            for r in conn.execute(
                sa.text("SELECT * FROM derived_metrics WHERE computed_on = :d"),
                {"d": NOW.date()},
            )
        }
    assert set(rows) == {1, 2, 3, 4, 5, 7, 8}
    first = rows[1]
    assert (first.email_sent, first.email_opens, first.email_clicks) == (2, 2, 1)
    assert (first.open_rate, first.click_rate, first.days_since_interaction) == (1.0, 0.5, 1)
    assert (first.nps_last, first.nps_group, first.csat_satisfied_share) == (6, "detractor", 0.5)
    assert first.ces_mean == pytest.approx(3.5) and first.window_days == WINDOW
    assert rows[8].gap_regularity == pytest.approx(5 / 15)
    assert rows[8].nps_last is None and rows[5].open_rate is None
    assert rows[4].purchases_per_month == pytest.approx(MONTH)
