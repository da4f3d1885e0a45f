"""The learned purchases forecast: its scores against a computation by hand, the fallback to
BG/NBD on a short history, and derive storing and reporting it on both stores."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from derive_data import load_orders

from surmesure.derive import forecast, propensity_model
from surmesure.derive.run import derive
from surmesure.store import Store

pytestmark = pytest.mark.filterwarnings(
    "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
)

START = date(2023, 1, 1)
DAYS = 240
EPOCH = date(1970, 1, 1)


def _history(people: int = 300, seed: int = 7) -> list[tuple[int, int, float]]:
    """(person, day offset, value): a first purchase in the first 30 days, then purchases at
    a rate of each person's own (some stop buying halfway), values around 20."""
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(1, people + 1):
        rate = rng.gamma(1.5, 1 / 40)
        stop = DAYS if rng.random() < 0.7 else int(rng.integers(60, DAYS))
        day = int(rng.integers(0, 30))
        while day < stop:
            rows.append((person, day, float(round(rng.gamma(4, 5), 2))))
            day += 1 + int(rng.exponential(1 / rate))
    return rows


def _purchases(rows: list[tuple[int, int, float]]) -> forecast.Purchases:
    base = (START - EPOCH).days
    return forecast.Purchases.of(
        [r[0] for r in rows], [base + r[1] for r in rows], [r[2] for r in rows]
    )


def _count(rows: list[tuple[int, int, float]], person: int, start: int, end: int) -> int:
    """Purchase days of ``person`` in ``(start, end]`` (day offsets), by hand."""
    return len({d for p, d, _ in rows if p == person and start < d <= end})


def test_scores_match_a_computation_by_hand() -> None:
    predicted, actual = [0.5, 2.0, 1.0, 4.0], [0, 3, 1, 2]
    s = forecast.score(predicted, actual)
    assert s.mae == pytest.approx((0.5 + 1 + 0 + 2) / 4)
    assert s.rmse == pytest.approx(math.sqrt((0.25 + 1 + 0 + 4) / 4))
    # ranks 1 3 2 4 against 1 4 2 3: 1 - 6 * sum d^2 / (n (n^2 - 1))
    assert s.spearman == pytest.approx(1 - 6 * (0 + 1 + 0 + 1) / (4 * 15))
    assert s.predicted_over_actual == pytest.approx(7.5 / 6)


def test_validation_figures_match_an_independent_computation() -> None:
    rows = _history()
    p = _purchases(rows)
    as_of = (START - EPOCH).days + DAYS - 1
    fitted = forecast.fit(p, as_of, 60)
    assert fitted.name == "gradient_boosting" and fitted.window_days == 60
    v = fitted.validation
    assert v is not None and v.window_days == 60
    # the same recipe trained before the last 60 days, scored by hand on what followed
    start = as_of - 60
    trial = forecast.fit(p.until(start), start, 60, validate=False)
    people, predicted = trial.predict(p, start)
    offset = (START - EPOCH).days
    actual = [_count(rows, int(q), start - offset, as_of - offset) for q in people]
    last = [_count(rows, int(q), start - 60 - offset, start - offset) for q in people]
    assert v.buyers == len(people) == len({r[0] for r in rows if r[1] <= start - offset})
    mae = sum(abs(a - b) for a, b in zip(predicted, actual, strict=True)) / len(actual)
    assert v.model.mae == pytest.approx(mae)
    assert v.last_period.mae == pytest.approx(
        sum(abs(a - b) for a, b in zip(last, actual, strict=True)) / len(actual)
    )
    sq = sum((a - b) ** 2 for a, b in zip(predicted, actual, strict=True)) / len(actual)
    assert v.model.rmse == pytest.approx(math.sqrt(sq))
    # the trees only move purchases between buyers: the total is BG/NBD's
    assert v.model.predicted_over_actual == pytest.approx(v.bgnbd.predicted_over_actual)


def test_short_history_falls_back_to_bgnbd() -> None:
    rows = [r for r in _history() if r[1] < 70]
    p = _purchases(rows)
    as_of = (START - EPOCH).days + 69
    fitted = forecast.fit(p, as_of, 365)
    assert fitted.name == "bgnbd" and fitted.validation is None
    assert "too short" in fitted.note
    people, predicted = fitted.predict(p, as_of)
    f, model = forecast.frame(p, as_of, 365)
    np.testing.assert_allclose(predicted, forecast.bgnbd_forecast(f, model, 365))
    assert list(people) == sorted({r[0] for r in rows})


def _load(store: Store, rows: list[tuple[int, int, float]]) -> None:
    people = sorted({r[0] for r in rows})
    orders = [
        (
            f"o{i}",
            person,
            (
                datetime.combine(START, datetime.min.time()) + timedelta(days=day, hours=10)
            ).isoformat(),
            False,
            [(value, False)],
        )
        for i, (person, day, value) in enumerate(rows)
    ]
    load_orders(store, {p: f"c{p}" for p in people}, orders)


AS_OF = START + timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray, forecast.Validation | None]:
    """The forecast of :func:`_history` at ``AS_OF`` over 60 days, computed apart from derive
    once for both stores: the people, their expected purchases, and the validation."""
    p = _purchases(_history())
    day = (AS_OF - EPOCH).days
    people, predicted = forecast.fit(p, day, 60, validate=False).predict(p, day)
    return people, predicted, forecast.validation(p, day, 60)


def test_derive_stores_the_learned_forecast_and_reports_it(
    store: Store, reference: tuple[np.ndarray, np.ndarray, forecast.Validation | None]
) -> None:
    rows = _history()
    _load(store, rows)
    as_of = AS_OF
    result = derive(store, as_of=as_of, horizon_days=60, now=datetime(2024, 1, 1))
    shown = result.model_dump(mode="json")["forecast"]
    assert shown["model"] == "gradient_boosting" and shown["horizon_days"] == 60
    assert shown["validation"]["model"]["mae"] > 0
    with store.connect() as conn:
        stored = dict(
            conn.execute(sa.text("SELECT person_id, expected_purchases FROM derived_metrics")).all()
        )
    people, predicted, validation = reference
    assert len(stored) == len(people)
    np.testing.assert_allclose([stored[int(q)] for q in people], predicted, rtol=1e-9)
    assert result.forecast is not None
    # the validation derive reports is the one computed from the same purchase days
    assert result.forecast.validation == validation


def test_derive_on_a_short_history_says_bgnbd(store: Store) -> None:
    rows = [r for r in _history(people=40) if r[1] < 50]
    _load(store, rows)
    result = derive(store, as_of=START + timedelta(days=49), now=datetime(2024, 1, 1))
    assert result.forecast is not None and result.forecast.model == "bgnbd"
    assert any("BG/NBD's forecast is used" in note for note in result.notes)


def test_propensity_is_calibrated_on_its_training_windows() -> None:
    rows = _history()
    p = _purchases(rows)
    as_of = (START - EPOCH).days + DAYS - 1
    fitted = propensity_model.fit(p, as_of, 30)
    assert fitted.fitted and fitted.level.shift == 0
    # both classifiers fit their log loss, which keeps the mean: the predicted rate over the
    # training windows is the share of buyers who bought in them, counted here by hand
    offset = (START - EPOCH).days
    predicted, bought = [], []
    for k in range(forecast.STACK):
        t0 = as_of - 30 - k * forecast.STACK_STEP_DAYS
        people, probability = fitted.predict(p, t0)
        predicted += list(probability)
        bought += [_count(rows, int(q), t0 - offset, t0 + 30 - offset) > 0 for q in people]
    assert np.all((np.array(predicted) >= 0) & (np.array(predicted) <= 1))
    assert np.mean(predicted) == pytest.approx(np.mean(bought), abs=0.03)
    # and it ranks: buyers of the next 30 days got higher probabilities on average
    chosen = np.array(predicted)[np.array(bought)]
    assert chosen.mean() > np.array(predicted)[~np.array(bought)].mean()


def test_propensity_without_history_is_unknown() -> None:
    rows = [r for r in _history() if r[1] < 70]
    p = _purchases(rows)
    fitted = propensity_model.fit(p, (START - EPOCH).days + 69, 30)
    people, probability = fitted.predict(p, (START - EPOCH).days + 69)
    assert not fitted.fitted and len(people) == len({r[0] for r in rows})
    assert np.isnan(probability).all()
