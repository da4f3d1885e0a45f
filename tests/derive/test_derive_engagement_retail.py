"""Category breadth, up-sell potential and the engagement scores on Online Retail II (DuckDB),
against an independent pandas computation from the raw tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import copy_store
from surmesure.derive.run import derive
from surmesure.store import Store, open_store

pytestmark = pytest.mark.filterwarnings(
    "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
)

AS_OF = date(2010, 12, 9)
NOW = datetime(2010, 12, 10, 6, 0)


def _sql(store: Store, query: str) -> pd.DataFrame:
    with store.connect() as conn:
        return store.raw_duckdb(conn).sql(query).to_arrow_table().to_pandas()


@pytest.fixture(scope="module")
def retail(
    online_retail: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    folder: Path = tmp_path_factory.mktemp("engagement_retail")
    store = open_store(copy_store(online_retail[0], folder))  # the file, imported
    # the file has no categories: the first two characters of numeric stock codes stand in
    with store.begin() as conn:
        store.raw_duckdb(conn).execute(
            "UPDATE products SET category = substr(product_code, 1, 2) "
            "WHERE regexp_matches(product_code, '^[0-9]')"
        )
    derive(store, as_of=AS_OF, window_days=90, now=NOW)
    yield store
    store.dispose()


def _mid_rank(values: pd.Series) -> pd.Series:
    known = values.dropna()
    return (known.rank(method="average") - 0.5) / len(known)


@pytest.mark.realdata
def test_breadth_and_upsell_match_pandas(retail: Store) -> None:
    derived = _sql(retail, "SELECT * FROM derived_metrics").set_index("person_id")
    lines = _sql(
        retail,
        f"""
        SELECT o.order_id, o.person_id, l.amount, l.is_fee, p.category
        FROM orders o JOIN order_lines l USING (order_id)
        LEFT JOIN products p USING (product_code)
        WHERE NOT o.is_return AND o.ordered_at < DATE '{AS_OF}' + 1
          AND o.person_id IN (SELECT person_id FROM identifiers WHERE kind = 'customer_id')
        """,
    )
    goods = lines[~lines["is_fee"]]
    buyers = lines["person_id"].unique()
    breadth = goods.groupby("person_id")["category"].nunique().reindex(buyers, fill_value=0)
    got = derived["category_breadth"].dropna().astype(int)
    assert len(got) == len(buyers) == 4_314
    assert (got.sort_index() == breadth.sort_index()).all()
    assert 1 < breadth.mean() < 30 and breadth.max() > 20

    per_order = goods.groupby(["person_id", "order_id"])["amount"].sum()
    per_order = per_order.reindex(
        lines[["person_id", "order_id"]]
        .drop_duplicates()
        .set_index(["person_id", "order_id"])
        .index,
        fill_value=0.0,
    )
    cents = (per_order * 100).round().groupby("person_id").agg(["sum", "count"])
    basket = cents["sum"] / cents["count"]
    segment = derived["rfm_segment"].reindex(basket.index)
    expected = {}
    for _, members in basket.groupby(segment):
        values = members.to_numpy()
        for person, value in members.items():
            expected[person] = (
                (values > value).sum() / (len(values) - 1) if len(values) > 1 else np.nan
            )
    want = pd.Series(expected).sort_index()
    have = derived["upsell_potential"].reindex(want.index).astype(float)
    assert np.allclose(have, want, rtol=0, atol=1e-12, equal_nan=True)
    assert derived["upsell_potential"].between(0, 1).sum() == len(buyers)


@pytest.mark.realdata
def test_scores_match_pandas(retail: Store) -> None:
    d = _sql(retail, "SELECT * FROM derived_metrics").set_index("person_id")
    buyer = d["frequency"].notna()
    parts_r = [
        (_mid_rank(d["open_rate"]), 0.3),
        (_mid_rank(d["click_rate"]), 0.4),
        (1 - _mid_rank(d["days_since_interaction"]), 0.3),
    ]
    parts_t = [
        (_mid_rank(d["purchases_per_month"].where(buyer)), 0.5),
        (1 - _mid_rank(d["gap_regularity"]), 0.25),
        (_mid_rank(d["category_breadth"]), 0.25),
    ]

    def combine(parts: list[tuple[pd.Series, float]]) -> pd.Series:
        frame = pd.concat([p.reindex(d.index) for p, _ in parts], axis=1)
        weights = np.array([w for _, w in parts])
        known = frame.notna().to_numpy()
        total = (frame.fillna(0).to_numpy() * weights).sum(axis=1)
        used = (known * weights).sum(axis=1)
        return pd.Series(np.where(used > 0, 100 * total / np.where(used > 0, used, 1), np.nan),
                         index=d.index)  # fmt: skip

    rel, trans = combine(parts_r), combine(parts_t)
    overall = pd.concat([rel, trans], axis=1).mean(axis=1, skipna=True)
    for column, want in (
        ("relational_engagement", rel),
        ("transactional_engagement", trans),
        ("engagement_score", overall),
    ):
        have = d[column].astype(float)
        assert np.allclose(have, want, rtol=1e-12, atol=1e-9, equal_nan=True), column
        assert have.dropna().between(0, 100).all()
    # no e-mail in this file: relational engagement is recency alone, for every person
    assert d["open_rate"].isna().all() and d["relational_engagement"].notna().all()
    assert d.loc[buyer, "transactional_engagement"].notna().all()
    assert d.loc[~buyer, "transactional_engagement"].isna().all()
    # more engaged buyers buy more: the scores agree with frequency
    assert d.loc[buyer, "engagement_score"].corr(d.loc[buyer, "frequency"], "spearman") > 0.5
