"""BG/NBD and Gamma-Gamma on CDNOW against the published fit and the lifetimes package."""

from __future__ import annotations

import warnings
from collections import defaultdict
from datetime import date

import numpy as np
import pandas as pd
import pytest
from derive_data import load_cdnow, read_cdnow

from conftest import dataset
from surmesure.derive import bgnbd, clv, gammagamma
from surmesure.derive.source import ibis_backend
from surmesure.store import Store

with warnings.catch_warnings():
    # lifetimes 0.11.3 sets a pandas option that pandas 3 deprecates, on import
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter

pytestmark = [
    pytest.mark.realdata,
    # Ibis 12 calls a method DuckDB 2.0 deprecates; lifetimes predates pandas 3
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:lifetimes.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:lifetimes.*"),
]

CDNOW = "cdnow/CDNOW_sample.txt"
END = date(1997, 9, 30)  # end of the calibration period

# Fader, Hardie and Lee (2005) on the CDNOW sample, 2,357 customers, time in weeks
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


def _cdnow_stats() -> pd.DataFrame:
    """Per customer: x, t_x and T in days and m, from the raw file with plain Python."""
    spend: dict[int, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for customer, day, dollars in read_cdnow(dataset(CDNOW)):
        when = date.fromisoformat(day)
        if when <= END:
            spend[customer][when] += dollars
    rows = []
    for customer, days in sorted(spend.items()):
        ordered = sorted(days)
        x = len(ordered) - 1
        m = sum(days[d] for d in ordered[1:]) / x if x else float("nan")
        rows.append((customer, x, (ordered[-1] - ordered[0]).days, (END - ordered[0]).days, m))
    return pd.DataFrame(rows, columns=["customer", "x", "t_x", "T", "m"]).set_index("customer")


@pytest.fixture(scope="module")
def stats() -> pd.DataFrame:
    return _cdnow_stats()


def _weeks(stats: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        stats["x"].to_numpy(float),
        stats["t_x"].to_numpy(float) / 7,
        stats["T"].to_numpy(float) / 7,
    )


def test_summary_in_store_matches_the_raw_file(store: Store, stats: pd.DataFrame) -> None:
    load_cdnow(store, dataset(CDNOW))
    with ibis_backend(store) as backend:
        got = clv.summary(backend, END).to_pyarrow().to_pandas().set_index("person_id")
    got = got.sort_index()
    assert len(got) == len(stats) == 2_357
    assert (got.index == stats.index).all()
    assert (got["repeat_purchases"] == stats["x"]).all()
    assert (got["purchase_span_days"] == stats["t_x"]).all()
    assert (got["customer_age_days"] == stats["T"]).all()
    repeat = stats["x"] > 0
    assert got["mean_repeat_value"][~repeat].isna().all()
    assert np.allclose(got["mean_repeat_value"][repeat], stats["m"][repeat], rtol=1e-12)


def test_bgnbd_matches_published_and_lifetimes(stats: pd.DataFrame) -> None:
    x, t_x, T = _weeks(stats)
    fitted = bgnbd.fit(x, t_x, T)
    assert fitted.converged
    for name, value in PUBLISHED_BGNBD.items():
        assert getattr(fitted, name) == pytest.approx(value, rel=1e-2), name
    peer = BetaGeoFitter().fit(x, t_x, T)
    for name in PUBLISHED_BGNBD:
        assert getattr(fitted, name) == pytest.approx(peer.params_[name], rel=1e-3), name
    # grouped (weighted) statistics in days give the same model
    grouped = clv.fit(stats["x"], stats["t_x"], stats["T"], stats["m"].fillna(0))
    assert grouped.bgnbd.alpha == pytest.approx(fitted.alpha, rel=1e-5)
    assert grouped.bgnbd.r == pytest.approx(fitted.r, rel=1e-5)
    assert grouped.bgnbd.b == pytest.approx(fitted.b, rel=1e-5)
    assert grouped.bgnbd.customers == 2_357


def test_gamma_gamma_matches_published_and_lifetimes(stats: pd.DataFrame) -> None:
    repeat = stats[stats["x"] > 0]
    fitted = gammagamma.fit(stats["x"], stats["m"].fillna(0))
    assert fitted.customers == len(repeat) == 946
    peer = GammaGammaFitter().fit(repeat["x"].to_numpy(float), repeat["m"].to_numpy(float))
    for name, value in PUBLISHED_GG.items():
        assert getattr(fitted, name) == pytest.approx(value, rel=1e-2), name
        assert getattr(fitted, name) == pytest.approx(peer.params_[name], rel=1e-2), name
    expected = gammagamma.expected_value(
        fitted, repeat["x"].to_numpy(float), repeat["m"].to_numpy(float)
    )
    peer_expected = peer.conditional_expected_average_profit(
        repeat["x"].to_numpy(float), repeat["m"].to_numpy(float)
    )
    assert np.allclose(expected, peer_expected, rtol=1e-4)
    assert fitted.population_mean == pytest.approx(fitted.p * fitted.v / (fitted.q - 1), rel=1e-12)


def test_predictions_match_lifetimes(stats: pd.DataFrame) -> None:
    x, t_x, T = _weeks(stats)
    fitted = bgnbd.fit(x, t_x, T)
    peer = BetaGeoFitter().fit(x, t_x, T)
    # the first customers of the file, the most frequent, a one-off and the last
    picks = np.array([0, 5, int(np.argmax(x)), int(np.argmin(x)), len(x) - 1])
    for weeks in (1.0, 10.0, 39.0, 52.0):
        ours = bgnbd.expected_purchases(fitted, weeks, x[picks], t_x[picks], T[picks])
        theirs = peer.conditional_expected_number_of_purchases_up_to_time(
            weeks, x[picks], t_x[picks], T[picks]
        )
        assert np.allclose(ours, np.asarray(theirs), rtol=1e-6, atol=0), weeks
    ours_alive = bgnbd.p_alive(fitted, x, t_x, T)
    theirs_alive = np.asarray(peer.conditional_probability_alive(x, t_x, T))
    assert np.allclose(ours_alive[picks], theirs_alive[picks], rtol=1e-6, atol=0)
    assert np.allclose(ours_alive, theirs_alive, rtol=1e-5, atol=0)
    assert (ours_alive[x == 0] == 1.0).all()


def test_population_expectation_closed_form(stats: pd.DataFrame) -> None:
    # a new customer (x = t_x = T = 0): E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r
    # 2F1(r, b; a+b-1; t/(alpha+t))], the paper's equation 7; t = 0 gives nothing
    from scipy.special import hyp2f1

    fitted = bgnbd.fit(*_weeks(stats))
    r, alpha, a, b = fitted.r, fitted.alpha, fitted.a, fitted.b
    t = 20.0
    closed = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    )
    zero = np.zeros(1)
    assert bgnbd.expected_purchases(fitted, t, zero, zero, zero)[0] == pytest.approx(
        closed, rel=1e-12
    )
    assert bgnbd.expected_purchases(fitted, 0.0, zero, zero, zero)[0] == pytest.approx(
        0.0, abs=1e-15
    )


def test_discounted_value_matches_lifetimes(stats: pd.DataFrame) -> None:
    model = clv.fit(stats["x"], stats["t_x"], stats["T"], stats["m"].fillna(0))
    assert model.gamma_gamma is not None
    monthly = 0.01
    annual = (1 + monthly) ** (365 / 30) - 1
    x = stats["x"].to_numpy(float)
    t_x = stats["t_x"].to_numpy(float)
    T = stats["T"].to_numpy(float)
    m = stats["m"].fillna(0).to_numpy(float)
    ours = clv.predict(model, x, t_x, T, m, horizon_days=360, discount_rate=annual)
    # lifetimes in days: the same BG/NBD with alpha in days, 12 steps of 30 days
    frequency_model = BetaGeoFitter()
    frequency_model.params_ = pd.Series(
        {
            "r": model.bgnbd.r,
            "alpha": model.bgnbd.alpha * 7,
            "a": model.bgnbd.a,
            "b": model.bgnbd.b,
        }
    )
    # fit() sets this alias; the parameters are set by hand here
    frequency_model.predict = frequency_model.conditional_expected_number_of_purchases_up_to_time
    spend_model = GammaGammaFitter()
    spend_model.params_ = pd.Series(
        {"p": model.gamma_gamma.p, "q": model.gamma_gamma.q, "v": model.gamma_gamma.v}
    )
    theirs = spend_model.customer_lifetime_value(
        frequency_model,
        pd.Series(x),
        pd.Series(t_x),
        pd.Series(T),
        pd.Series(m),
        time=12,
        discount_rate=monthly,
        freq="D",
    ).to_numpy()
    assert np.allclose(ours["expected_value"], theirs, rtol=1e-6, atol=1e-9)
    purchases = frequency_model.conditional_expected_number_of_purchases_up_to_time(360, x, t_x, T)
    assert np.allclose(ours["expected_purchases"], np.asarray(purchases), rtol=1e-6)
    assert ours["expected_value"].sum() > 0


def test_undiscounted_value_is_purchases_times_spend(stats: pd.DataFrame) -> None:
    model = clv.fit(stats["x"], stats["t_x"], stats["T"], stats["m"].fillna(0))
    assert model.gamma_gamma is not None
    args = (stats["x"], stats["t_x"], stats["T"], stats["m"].fillna(0))
    flat = clv.predict(model, *args, horizon_days=365, discount_rate=0.0)
    spend = gammagamma.expected_value(
        model.gamma_gamma, stats["x"].to_numpy(float), stats["m"].fillna(0).to_numpy(float)
    )
    assert np.allclose(flat["expected_value"], flat["expected_purchases"] * spend, rtol=1e-9)
    discounted = clv.predict(model, *args, horizon_days=365, discount_rate=0.1)
    assert (discounted["expected_value"] < flat["expected_value"]).all()
    assert clv.horizon_steps(65) == [30, 60, 65]
