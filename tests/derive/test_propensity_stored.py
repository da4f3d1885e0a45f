"""Purchase propensity as derive stores it: the probabilities of the fitted model on every
buyer's row, their validation against the RFM logistic regression in the result, a segment
selecting on them, and empty columns with a note on a short history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score
from test_forecast import DAYS, EPOCH, START, _count, _history, _load, _purchases
from threadpoolctl import threadpool_limits

from surmesure.derive import propensity, propensity_model
from surmesure.derive.run import derive
from surmesure.domain.segments import SegmentDefinition
from surmesure.segment.membership import members
from surmesure.store import Store

pytestmark = pytest.mark.filterwarnings(
    "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The trees on one thread, as derive fits them."""
    with threadpool_limits(1, "openmp"):
        yield


def _stored(store: Store) -> dict[int, tuple[float | None, float | None]]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT person_id, p_purchase_30d, p_purchase_90d FROM derived_metrics")
        ).all()
    return {int(r[0]): (r[1], r[2]) for r in rows}


def test_derive_stores_each_buyers_calibrated_probabilities(store: Store) -> None:
    rows = _history()
    _load(store, rows)
    as_of = START + timedelta(days=DAYS - 1)
    result = derive(store, as_of=as_of, horizon_days=60, now=datetime(2024, 1, 1))
    stored = _stored(store)
    day = (as_of - EPOCH).days
    p = _purchases(rows)
    for index, days in enumerate(propensity.DAYS):
        summary = result.propensity[index]
        v = summary.validation
        # the model that scored the better Brier score on the last window gives the values
        # (240 days hold no 90-day validation: windows before it need 60 days of history)
        assert (v is None) == (days == 90)
        if v is not None and v.logistic_rfm.brier < v.model.brier:
            assert summary.model == "logistic_rfm"
            expected = propensity.logistic_rfm(p, day, days)
            people = np.unique(p.person)
        else:
            assert summary.model == propensity.MODEL == "boosting_splines_rfm_bgnbd_average"
            people, expected = propensity_model.fit(p, day, days).predict(p, day)
        assert expected is not None
        got = np.array([stored[int(q)][index] for q in people], dtype=np.float64)
        np.testing.assert_allclose(got, expected, rtol=1e-9)
        assert ((got >= 0) & (got <= 1)).all() and np.ptp(got) > 0
    shown = result.model_dump(mode="json")["propensity"]
    assert [s["days"] for s in shown] == list(propensity.DAYS)
    assert [s["column"] for s in shown] == ["p_purchase_30d", "p_purchase_90d"]

    # the 30-day validation, by hand: trained before the last 30 days, scored on them
    v = result.propensity[0].validation
    assert v is not None
    start = day - 30
    trial = propensity_model.fit(p.until(start), start, 30)
    people, predicted = trial.predict(p.until(start), start)
    offset = (START - EPOCH).days
    bought = np.array([_count(rows, int(q), start - offset, day - offset) > 0 for q in people])
    assert v.buyers == len(people)
    assert v.purchase_rate == pytest.approx(bought.mean())
    assert v.model.auc == pytest.approx(roc_auc_score(bought, predicted))
    assert v.model.brier == pytest.approx(np.mean((predicted - bought) ** 2))
    assert 0.5 < v.logistic_rfm.auc <= 1
    # the level there (reported): shifted by it, the mean probability is the share who bought
    levelled = propensity_model.Level(shift=v.level_shift).apply(predicted)
    assert levelled == pytest.approx(expit(logit(predicted) + v.level_shift))
    assert levelled.mean() == pytest.approx(bought.mean(), abs=1e-4)
    assert v.level_shift != 0 and roc_auc_score(bought, levelled) == pytest.approx(v.model.auc)


def test_a_segment_selects_on_the_stored_probability(store: Store) -> None:
    rows = _history()
    _load(store, rows)
    as_of = START + timedelta(days=DAYS - 1)
    derive(store, as_of=as_of, horizon_days=60, now=datetime(2024, 1, 1))
    stored = _stored(store)
    likely = SegmentDefinition.model_validate(
        {
            "name": "likely",
            "where": {"metric": {"name": "p_purchase_90d", "op": "ge", "value": 0.5}},
        }
    )
    with store.connect() as conn:
        found = members(conn, store, likely, datetime(2024, 1, 1), {})
    expected = sorted(pid for pid, (_, p90) in stored.items() if p90 is not None and p90 >= 0.5)
    assert found == expected and 0 < len(found) < len(stored)


def test_a_short_history_leaves_the_columns_empty_and_says_why(store: Store) -> None:
    rows = [r for r in _history(people=60) if r[1] < 50]
    _load(store, rows)
    result = derive(store, as_of=START + timedelta(days=49), now=datetime(2024, 1, 1))
    assert set(_stored(store).values()) == {(None, None)}
    assert [s.model for s in result.propensity] == ["none", "none"]
    assert any("30-day propensity" in note for note in result.notes)
