"""KPIs on a hand-made history (both stores) and on Online Retail II against pandas (DuckDB)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from derive_data import AS_OF, CUSTOMERS, TINY, load_answers, load_orders

from conftest import copy_store
from surmesure.derive.kpi import kpis
from surmesure.errors import InvalidInput
from surmesure.store import Store, open_store

ANSWERS = [
    ("n1", 1, "nps", 10, "2024-03-01 10:00:00"),
    ("n2", 2, "nps", 3, "2024-03-05 10:00:00"),
    ("n3", 3, "nps", 8, "2024-02-10 10:00:00"),
    ("n4", 7, "nps", 9, "2024-02-11 10:00:00"),
    ("n5", 1, "nps", 6, "2023-01-15 10:00:00"),  # before the 365-day window
    ("n6", 5, "nps", 10, "2024-03-10 10:00:00"),  # no RFM segment (never bought)
    ("n7", 6, "nps", 0, "2024-03-10 10:00:00"),  # not identified
    ("n8", 4, "nps", 10, "2024-04-02 10:00:00"),  # after as_of
    ("c1", 1, "csat", 5, "2024-03-01 10:00:00"),
    ("c2", 2, "csat", 3, "2024-03-01 10:00:00"),
    ("c3", 3, "csat", 4, "2024-03-01 10:00:00"),
    ("e1", 1, "ces", 2, "2024-03-01 10:00:00"),
    ("e2", 2, "ces", 5, "2024-03-01 10:00:00"),
]


def test_kpis_by_hand(store: Store) -> None:
    load_orders(store, CUSTOMERS, TINY)
    load_answers(store, ANSWERS)
    k = kpis(store, as_of=AS_OF, horizon_days=90, window_days=365)
    # buyers 1, 2, 3, 4, 7 (5 only returned); purchases A1 A2 B1 C1 C2 C3 D1 G1, non-fee value
    # 20 + 30 + 100 + 10 + 15 + 25 + 8 + 500 = 708; net per buyer 50, 60, 50, 8, 500
    assert (k.buyers, k.purchase_orders) == (5, 8)
    assert k.revenue == pytest.approx(668.0)
    assert k.repeat_purchase_rate == pytest.approx(2 / 5)
    assert k.average_basket == pytest.approx(708 / 8)
    assert k.revenue_per_customer == pytest.approx(668 / 5)
    assert k.top_decile_share == pytest.approx(500 / 668)
    # active in the year to 2024-01-01: 3 (Dec 1) and 7 (Dec 22); 3 came back on Mar 1
    assert (k.churn_base, k.churned, k.churn_rate) == (2, 1, 0.5)
    assert [(c.month, c.customers, c.retention) for c in k.cohorts] == [
        ("2023-12", 2, [1.0, 0.0, 0.0, 0.5]),
        ("2024-01", 1, [1.0, 0.0, 1.0]),
        ("2024-02", 1, [1.0, 0.0]),
        ("2024-03", 1, [1.0]),
    ]
    # window: n1 promoter, n2 detractor, n3 passive, n4 promoter, n6 promoter
    assert k.satisfaction.answers == {"nps": 5, "csat": 3, "ces": 2}
    assert k.satisfaction.nps == pytest.approx(40.0)
    assert k.satisfaction.csat == pytest.approx(2 / 3)
    assert k.satisfaction.ces == pytest.approx(3.5)
    # in the segments' order; every segment here rests on fewer than 30 answers
    got = [
        (g.segment, g.nps_answers, g.nps, g.csat_answers, g.csat, g.ces_answers, g.ces, g.small)
        for g in k.satisfaction_by_segment
    ]
    # Loyal: person 3 (NPS 8 passive, CSAT 4); Potential loyalist: person 1 (NPS 10, CSAT 5,
    # CES 2); At risk: persons 2 (NPS 3, CSAT 3, CES 5) and 7 (NPS 9)
    assert got == [
        ("Loyal", 1, 0.0, 1, 1.0, 0, None, True),
        ("Potential loyalist", 1, 100.0, 1, 1.0, 1, 2.0, True),
        ("At risk", 2, 0.0, 1, 0.0, 1, 5.0, True),
    ]
    # one promoter and one detractor: variance (1/2 + 1/2 - 0) / 2, margin 1.96 x 100 x 0.707
    assert k.satisfaction_by_segment[2].nps_margin == pytest.approx(138.59, abs=0.01)
    assert k.satisfaction_by_segment[0].nps_margin is None
    by_month = [(g.group, g.answers, round(g.nps, 6)) for g in k.nps_by_month]
    assert by_month == [("2023-01", 1, -100.0), ("2024-02", 2, 50.0), ("2024-03", 3, 33.333333)]


def test_kpis_of_an_empty_store(store: Store) -> None:
    k = kpis(store, as_of=AS_OF)
    assert (k.buyers, k.revenue, k.cohorts, k.nps_by_month) == (0, 0.0, [], [])
    assert k.repeat_purchase_rate is None and k.churn_rate is None
    assert k.satisfaction.nps is None


def test_kpis_refuse_a_bad_horizon(duckdb_store: Store) -> None:
    with pytest.raises(InvalidInput) as error:
        kpis(duckdb_store, as_of=AS_OF, horizon_days=0)
    assert error.value.field == "horizon_days"


RETAIL_AS_OF = date(2010, 12, 9)


@pytest.fixture(scope="module")
def retail(
    online_retail: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    folder: Path = tmp_path_factory.mktemp("retail")
    store = open_store(copy_store(online_retail[0], folder))  # the file, imported
    yield store
    store.dispose()


def _frame(store: Store) -> pd.DataFrame:
    """One row per order of an identified person, read with plain SQL: day, return, value."""
    query = """
        SELECT o.order_id, o.person_id, CAST(o.ordered_at AS DATE) AS day, o.is_return,
               coalesce((SELECT sum(amount) FROM order_lines l
                         WHERE l.order_id = o.order_id AND NOT l.is_fee), 0) AS amount
        FROM orders o
        WHERE o.person_id IN (SELECT person_id FROM identifiers WHERE kind = 'customer_id')
    """
    with store.connect() as conn:
        frame = store.raw_duckdb(conn).sql(query).to_arrow_table().to_pandas()
    frame["day"] = pd.to_datetime(frame["day"])
    return frame[frame["day"] <= pd.Timestamp(RETAIL_AS_OF)]


@pytest.mark.realdata
def test_online_retail_kpis_match_pandas(retail: Store) -> None:
    k = kpis(retail, as_of=RETAIL_AS_OF, horizon_days=90)
    frame = _frame(retail)
    buys = frame[~frame["is_return"]]
    net = frame.groupby("person_id")["amount"].sum()
    frequency = buys.groupby("person_id")["order_id"].nunique()
    buyers = frequency.index
    net = net.reindex(buyers)
    assert k.buyers == len(buyers) == 4_314
    assert k.purchase_orders == len(buys)
    assert k.repeat_purchase_rate == pytest.approx((frequency >= 2).mean(), rel=1e-12)
    assert k.average_basket == pytest.approx(buys["amount"].mean(), rel=1e-9)
    assert k.revenue == pytest.approx(net.sum(), rel=1e-9)
    assert k.revenue_per_customer == pytest.approx(net.mean(), rel=1e-9)
    top = net.sort_values(ascending=False).head(math.ceil(len(net) / 10)).sum()
    assert k.top_decile_share == pytest.approx(top / net.sum(), rel=1e-9)
    assert 0.4 < k.top_decile_share < 0.8  # the usual concentration of retail revenue

    cut = pd.Timestamp(RETAIL_AS_OF - timedelta(days=90))
    before = buys[(buys["day"] > cut - pd.Timedelta(days=365)) & (buys["day"] <= cut)]
    after = set(buys.loc[buys["day"] > cut, "person_id"])
    base = set(before["person_id"])
    assert (k.churn_base, k.churned) == (len(base), len(base - after))

    month = buys["day"].dt.year * 12 + buys["day"].dt.month - 1
    first = month.groupby(buys["person_id"]).transform("min")
    cells = (
        pd.DataFrame({"person": buys["person_id"], "cohort": first, "offset": month - first})
        .drop_duplicates()
        .groupby(["cohort", "offset"])
        .size()
    )
    assert len(k.cohorts) == 13  # December 2009 to December 2010
    for cohort in k.cohorts:
        index = int(cohort.month[:4]) * 12 + int(cohort.month[5:]) - 1
        size = cells[(index, 0)]
        assert cohort.customers == size
        for offset, share in enumerate(cohort.retention):
            assert share == pytest.approx(cells.get((index, offset), 0) / size, rel=1e-12)
    assert k.cohorts[0].month == "2009-12" and len(k.cohorts[0].retention) == 13
