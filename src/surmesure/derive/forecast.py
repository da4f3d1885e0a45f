"""Purchases forecast learned from the shop's own past: gradient boosting on RFM, BG/NBD,
seasonality and inter-purchase features, trained on an earlier split of the same history.

BG/NBD assumes a stationary buying rate; a shop's year is not (Christmas, a summer lull) and
its customers are not all alike. Here the past corrects it: at an earlier day ``t0`` each
buyer's features are computed from the purchase days up to ``t0`` (RFM, counts over the last
30/90/180/365 days, the same window a year before, spend, inter-purchase gaps, the share of
purchases in the fourth quarter, BG/NBD's forecast and P(alive) fitted at ``t0``) and the
target is their purchase days in ``(t0, t0 + w]``. A Poisson gradient-boosting model
(scikit-learn's ``HistGradientBoostingRegressor``) learns ``g`` in
``y ~ Poisson(BG/NBD(w) * g(features))`` (BG/NBD as offset: the Poisson fit of ``y / offset``
weighted by the offset). Three ``t0`` 30 days apart are stacked. At ``as_of`` the forecast is
``BG/NBD(h) * g``, rescaled so that its total is BG/NBD's: the trees move purchases between
buyers, while the overall level learned on earlier windows would carry their season and their
shorter histories.

The window ``w`` is the horizon ``h`` when the history before ``as_of`` holds ``h`` plus
``MIN_HISTORY_DAYS``, else the longest that fits (BG/NBD then carries ``g`` from ``w`` to
``h``). Below ``MIN_WINDOW_DAYS`` of window or ``MIN_TRAIN_BUYERS`` buyers there is nothing to
learn from: the forecast is BG/NBD's (``model = "bgnbd"``), which stays the explainable
baseline either way.

Before fitting on the latest windows, the same recipe is validated once: trained on the
windows ending by ``as_of - h'``, applied at ``as_of - h'`` and scored on what followed, beside
BG/NBD and "the same count as the last ``h'`` days" (``Validation``).

Inputs are purchase days (one row per buyer and day, the BG/NBD convention of
:mod:`surmesure.derive.clv`), days as integers; history is ``day <= as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor

from surmesure.derive import bgnbd, clv
from surmesure.errors import InvalidInput

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MIN_HISTORY_DAYS = 60
MIN_WINDOW_DAYS = 30
MIN_TRAIN_BUYERS = 200
STACK = 3  # training windows, 30 days apart
STACK_STEP_DAYS = 30
MAX_TRAIN_PEOPLE = 100_000
MAX_TRAIN_ROWS = 300_000
TREES: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_leaf_nodes": 7,
    "min_samples_leaf": 100,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": 0,
}
OFFSET_FLOOR = 1e-3  # purchases: BG/NBD's forecast below this is taken as this
FEATURES = (
    "repeat_purchases",
    "purchase_span_days",
    "customer_age_days",
    "recency_days",
    "last_30",
    "last_90",
    "last_180",
    "last_365",
    "same_window_last_year",
    "mean_value",
    "last_value",
    "total_value",
    "mean_gap_days",
    "gap_std_days",
    "q4_share",
    "bgnbd_expected",
    "bgnbd_p_alive",
)


@dataclass(frozen=True)
class Purchases:
    """Purchase days: ``person`` and ``day`` (integer days, any origin) and the day's
    ``value``; one row per person and day."""

    person: IntArray
    day: IntArray
    value: Array

    @classmethod
    def of(cls, person: npt.ArrayLike, day: npt.ArrayLike, value: npt.ArrayLike) -> Purchases:
        """Purchase days from order rows: rows of one person and day are merged (values
        summed)."""
        frame = pd.DataFrame(
            {
                "person": np.asarray(person, dtype=np.int64),
                "day": np.asarray(day, dtype=np.int64),
                "value": np.asarray(value, dtype=np.float64),
            }
        )
        merged = frame.groupby(["person", "day"], as_index=False, sort=True)["value"].sum()
        return cls(
            merged["person"].to_numpy(np.int64),
            merged["day"].to_numpy(np.int64),
            merged["value"].to_numpy(np.float64),
        )

    def sample(self, people: int, seed: int = 0) -> Purchases:
        """The purchase days of at most ``people`` buyers drawn at random (a fixed seed)."""
        ids = np.unique(self.person)
        if len(ids) <= people:
            return self
        chosen = np.random.default_rng(seed).choice(ids, people, replace=False)
        keep = np.isin(self.person, chosen)
        return Purchases(self.person[keep], self.day[keep], self.value[keep])

    def until(self, day: int) -> Purchases:
        keep = self.day <= day
        return Purchases(self.person[keep], self.day[keep], self.value[keep])


def counts(p: Purchases, people: IntArray, start: int, end: int) -> Array:
    """Purchase days of each of ``people`` in ``(start, end]``."""
    inside = (p.day > start) & (p.day <= end)
    found = pd.Series(p.person[inside]).value_counts()
    return np.asarray(found.reindex(people, fill_value=0).to_numpy(np.float64), np.float64)


def _q4(days: IntArray) -> npt.NDArray[np.bool_]:
    months = (np.datetime64("1970-01-01") + days.astype("timedelta64[D]")).astype(
        "datetime64[M]"
    ).astype(np.int64) % 12 + 1
    return np.asarray(months >= 10)


@dataclass(frozen=True)
class Frame:
    """Per buyer at ``as_of``: the ids, the BG/NBD statistics and the feature matrix."""

    people: IntArray
    x: Array
    t_x: Array
    T: Array
    m: Array
    features: Array


def _bgnbd_only(x: Array, t_x: Array, T: Array) -> clv.ClvModel:
    """BG/NBD fitted as :func:`surmesure.derive.clv.fit` does, without the spend model the
    features do not use."""
    rows, _, weight = clv.distinct_rows(x, t_x, T)
    u = clv.UNIT_DAYS
    params = bgnbd.fit(rows[:, 0], rows[:, 1] / u, rows[:, 2] / u, weight)
    return clv.ClvModel(bgnbd=params, gamma_gamma=None)


def frame(p: Purchases, as_of: int, horizon_days: int) -> tuple[Frame, clv.ClvModel]:
    """The features of every buyer at ``as_of`` and the BG/NBD model fitted there."""
    h = p.until(as_of)
    if h.day.size == 0:
        raise InvalidInput(f"No purchase on or before day {as_of}.", hint="import orders first")
    d = pd.DataFrame({"person": h.person, "day": h.day, "value": h.value})
    for w in (30, 90, 180, 365):
        d[f"last_{w}"] = d["day"] > as_of - w
    d["same"] = (d["day"] > as_of - 365) & (d["day"] <= as_of - 365 + horizon_days)
    d["q4"] = _q4(h.day)
    d["gap"] = d.groupby("person")["day"].diff()
    g = d.groupby("person", sort=True)
    first, last = g["day"].min(), g["day"].max()
    n = g["day"].count().to_numpy(np.float64)
    total = g["value"].sum().to_numpy(np.float64)
    first_value = g["value"].first().to_numpy(np.float64)
    x = n - 1
    t_x = (last - first).to_numpy(np.float64)
    T = (as_of - first).to_numpy(np.float64)
    m = np.where(x > 0, (total - first_value) / np.maximum(x, 1), 0.0)
    model = _bgnbd_only(x, t_x, T)
    unit = model.unit_days
    expected = bgnbd.expected_purchases(model.bgnbd, horizon_days / unit, x, t_x / unit, T / unit)
    alive = bgnbd.p_alive(model.bgnbd, x, t_x / unit, T / unit)
    columns = [
        x,
        t_x,
        T,
        T - t_x,
        *(g[f"last_{w}"].sum().to_numpy(np.float64) for w in (30, 90, 180, 365)),
        g["same"].sum().to_numpy(np.float64),
        total / n,
        g["value"].last().to_numpy(np.float64),
        total,
        g["gap"].mean().to_numpy(np.float64),
        g["gap"].std().to_numpy(np.float64),
        g["q4"].mean().to_numpy(np.float64),
        expected,
        alive,
    ]
    people = first.index.to_numpy(np.int64)
    return Frame(people, x, t_x, T, m, np.column_stack(columns)), model


def bgnbd_forecast(f: Frame, model: clv.ClvModel, horizon_days: int) -> Array:
    """BG/NBD's expected purchases of each buyer of ``f`` in the next ``horizon_days``."""
    u = model.unit_days
    return bgnbd.expected_purchases(model.bgnbd, horizon_days / u, f.x, f.t_x / u, f.T / u)


def base(f: Frame, model: clv.ClvModel, horizon_days: int) -> Array:
    """The forecast the trees correct: BG/NBD's, floored at ``OFFSET_FLOOR``."""
    return np.maximum(bgnbd_forecast(f, model, horizon_days), OFFSET_FLOOR)


class Scores(BaseModel):
    """A forecast against what happened."""

    model_config = ConfigDict(frozen=True)

    mae: float
    rmse: float
    spearman: float
    predicted_over_actual: float


def score(predicted: npt.ArrayLike, actual: npt.ArrayLike) -> Scores:
    """MAE, RMSE, Spearman's rank correlation and the ratio of the totals."""
    p, a = np.asarray(predicted, np.float64), np.asarray(actual, np.float64)
    error = p - a
    rho = float(spearmanr(p, a).statistic) if np.ptp(p) > 0 and np.ptp(a) > 0 else 0.0
    return Scores(
        mae=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(error**2))),
        spearman=rho,
        predicted_over_actual=float(p.sum() / a.sum()) if a.sum() > 0 else float("nan"),
    )


class Validation(BaseModel):
    """The recipe trained on earlier windows and scored on the last ``window_days`` before
    ``as_of``, beside BG/NBD and the last period's count."""

    model_config = ConfigDict(frozen=True)

    window_days: int
    buyers: int
    model: Scores
    bgnbd: Scores
    last_period: Scores


class ForecastSummary(BaseModel):
    """Which model forecast the purchases, on what window, and how it fared in validation."""

    model_config = ConfigDict(frozen=True)

    model: str
    horizon_days: int
    window_days: int
    note: str = ""
    validation: Validation | None = None


class Forecaster:
    """A fitted forecast: ``predict(purchases, as_of)`` gives each buyer's expected purchase
    days in the next ``horizon_days``."""

    def __init__(
        self,
        horizon_days: int,
        window_days: int,
        regressor: HistGradientBoostingRegressor | None,
        note: str = "",
    ) -> None:
        self.horizon_days = horizon_days
        self.window_days = window_days
        self.regressor = regressor
        self.note = note
        self.validation: Validation | None = None

    @property
    def name(self) -> str:
        return "bgnbd" if self.regressor is None else "gradient_boosting"

    def summary(self) -> ForecastSummary:
        return ForecastSummary(
            model=self.name,
            horizon_days=self.horizon_days,
            window_days=self.window_days,
            note=self.note,
            validation=self.validation,
        )

    def predict_frame(self, f: Frame, model: clv.ClvModel) -> Array:
        if self.regressor is None:
            return bgnbd_forecast(f, model, self.horizon_days)
        offset = base(f, model, self.horizon_days)
        correction = np.asarray(self.regressor.predict(f.features), np.float64)
        # the trees move purchases between buyers; the total stays the base's, since the level
        # learned on earlier windows carries their season and their shorter histories
        scaled = offset * correction
        return np.asarray(scaled * offset.sum() / scaled.sum(), np.float64)

    def predict(self, p: Purchases, as_of: int) -> tuple[IntArray, Array]:
        f, model = frame(p, as_of, self.window_days)
        return f.people, self.predict_frame(f, model)


def plan(first_day: int, as_of: int, horizon_days: int) -> int:
    """The training window: ``horizon_days`` when the history allows, else the longest that
    leaves ``MIN_HISTORY_DAYS`` before it; 0 when that is under ``MIN_WINDOW_DAYS``."""
    window = min(horizon_days, as_of - first_day - MIN_HISTORY_DAYS)
    return window if window >= MIN_WINDOW_DAYS else 0


def _regressor() -> HistGradientBoostingRegressor:
    """Small, slow trees: a correction of BG/NBD, not a model of its own (larger trees fit the
    earlier windows' peculiarities and do worse later on)."""
    return HistGradientBoostingRegressor(loss="poisson", max_iter=50, **TREES)


def _train(p: Purchases, end: int, window: int) -> HistGradientBoostingRegressor | None:
    """Fit on the windows ``(t0, t0 + window]`` ending on or before ``end``."""
    windows = training_windows(p, end, window)
    if windows is None:
        return None
    frames, models, targets = windows
    features = np.vstack([f.features for f in frames])
    offset = np.concatenate([base(f, m, window) for f, m in zip(frames, models, strict=True)])
    target = np.concatenate(targets)
    if len(target) > MAX_TRAIN_ROWS:  # a large shop: a fixed random sample is as good
        keep = np.random.default_rng(0).choice(len(target), MAX_TRAIN_ROWS, replace=False)
        features, offset, target = features[keep], offset[keep], target[keep]
    # Poisson with BG/NBD as offset: y ~ Poisson(offset * g(features)) is the Poisson fit of
    # y / offset weighted by offset, so the trees learn BG/NBD's correction
    regressor = _regressor()
    regressor.fit(features, target / offset, sample_weight=offset)
    return regressor


def fit(p: Purchases, as_of: int, horizon_days: int, *, validate: bool = True) -> Forecaster:
    """Train on the history up to ``as_of`` for a ``horizon_days`` forecast (see the module
    docstring), with its validation on the last window when the history is long enough."""
    clv.horizon_steps(horizon_days)
    p = p.until(as_of)
    if p.day.size == 0:
        raise InvalidInput(f"No purchase on or before day {as_of}.", hint="import orders first")
    first_day = int(p.day.min())
    window = plan(first_day, as_of, horizon_days)
    # a large shop trains and validates on a sample of its buyers: as good, and bounded
    p = p.sample(MAX_TRAIN_PEOPLE)
    regressor = _train(p, as_of, window) if window else None
    if regressor is None:
        return Forecaster(
            horizon_days,
            horizon_days,
            None,
            note=(
                f"history too short to learn a {horizon_days}-day forecast "
                f"(needs {MIN_HISTORY_DAYS + MIN_WINDOW_DAYS} days and {MIN_TRAIN_BUYERS} "
                "buyers): BG/NBD's forecast is used"
            ),
        )
    note = (
        ""
        if window == horizon_days
        else f"trained on {window}-day windows, stretched to {horizon_days} days by BG/NBD"
    )
    forecaster = Forecaster(horizon_days, window, regressor, note)
    if validate:
        forecaster.validation = validation(p, as_of, window)
    return forecaster


def validation(p: Purchases, as_of: int, window: int) -> Validation | None:
    """Train on the windows ending by ``as_of - window``, forecast the next ``window`` days
    there and score against what happened; None when the history is too short."""
    start = as_of - window
    earlier = p.until(start)
    if earlier.day.size == 0 or plan(int(earlier.day.min()), start, window) < window:
        return None
    regressor = _train(earlier, start, window)
    if regressor is None:
        return None
    trial = Forecaster(window, window, regressor)
    f, model = frame(earlier, start, window)
    actual = counts(p, f.people, start, as_of)
    last = counts(p, f.people, start - window, start)
    return Validation(
        window_days=window,
        buyers=len(f.people),
        model=score(trial.predict_frame(f, model), actual),
        bgnbd=score(bgnbd_forecast(f, model, window), actual),
        last_period=score(last, actual),
    )


def training_windows(
    p: Purchases, end: int, window: int
) -> tuple[list[Frame], list[clv.ClvModel], list[Array]] | None:
    """The stacked training frames ``(t0, t0 + window]`` ending by ``end``, their BG/NBD fits
    and targets (purchase days); None when there are none or under ``MIN_TRAIN_BUYERS``."""
    first_day = int(p.day.min())
    frames, models, targets = [], [], []
    for k in range(STACK):
        t0 = end - window - k * STACK_STEP_DAYS
        if t0 - first_day < MIN_HISTORY_DAYS:
            break
        f, model = frame(p, t0, window)
        frames.append(f)
        models.append(model)
        targets.append(counts(p, f.people, t0, t0 + window))
    if not frames or sum(len(t) for t in targets) < MIN_TRAIN_BUYERS:
        return None
    return frames, models, targets
