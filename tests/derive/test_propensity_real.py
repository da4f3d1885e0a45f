"""Purchase propensity on later data of real shops: trained before a cut-off, scored on who
bought after it, against the logistic regression on RFM trained on the same windows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from conftest import dataset
from surmesure.derive import forecast, propensity, propensity_model
from surmesure.derive.forecast import Purchases

EPOCH = date(1970, 1, 1)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with threadpool_limits(1, "openmp"):
        yield


def _days(values: pd.Series) -> np.ndarray:
    return (values.to_numpy("datetime64[D]") - np.datetime64(EPOCH)).astype(np.int64)


def _cdnow() -> Purchases:
    rows = pd.read_csv(dataset("cdnow/CDNOW_master.txt"), sep=r"\s+")
    when = pd.to_datetime(rows["date"].astype(str), format="%Y%m%d")
    return Purchases.of(rows["customer_id"], _days(when), rows["dollar_value"])


def _online_retail() -> Purchases:
    lines = pd.read_parquet(dataset("online_retail_II/online_retail_II_2009_2010.parquet"))
    lines = lines[lines["Customer ID"].notna() & ~lines["Invoice"].astype(str).str.startswith("C")]
    value = lines["Quantity"] * lines["Price"]
    return Purchases.of(lines["Customer ID"].astype(np.int64), _days(lines["InvoiceDate"]), value)


@pytest.mark.parametrize(
    ("load", "cut"), [(_cdnow, date(1997, 9, 30)), (_online_retail, date(2010, 6, 1))]
)
@pytest.mark.parametrize("days", propensity.DAYS)
def test_the_average_beats_logistic_rfm_after_the_cut_off(
    load: Callable[[], Purchases], cut: date, days: int
) -> None:
    p = load()
    as_of = (cut - EPOCH).days
    fitted = propensity_model.fit(p, as_of, days)
    people, ours = fitted.predict(p, as_of)
    baseline = propensity.logistic_rfm(p, as_of, days)
    assert baseline is not None
    bought = forecast.counts(p, people, as_of, as_of + days) > 0
    assert 0 < bought.mean() < 1
    assert roc_auc_score(bought, ours) > roc_auc_score(bought, baseline)
    assert brier_score_loss(bought, ours) < brier_score_loss(bought, baseline)
    # the stored probability is the plain average of the three classifiers
    f, _ = forecast.frame(p, as_of, days)
    x = np.nan_to_num(f.features, nan=-1.0)
    members = (fitted.trees, fitted.splines, fitted.rfm)
    by_hand = np.mean([m.predict_proba(x)[:, 1] for m in members if m is not None], axis=0)
    assert sum(m is not None for m in members) == 3
    np.testing.assert_allclose(ours, by_hand, rtol=1e-12)
