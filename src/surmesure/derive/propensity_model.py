"""P(at least one purchase in the next ``days`` days) per buyer, learned from the shop's past.

Three classifiers trained on the same stacked earlier windows as the purchases forecast: gradient
boosting (``HistGradientBoostingClassifier``) and a logistic regression on cubic splines of
every feature of the forecast (:data:`surmesure.derive.forecast.FEATURES`; signed log1p,
standardized, ``SplineTransformer``), and a logistic regression on RFM alone (recency,
frequency, mean value; log1p, standardized); the probability is their average. The trees and
the splines hold flat past the training windows' range, while the windows always have shorter
histories than ``as_of``; the RFM regression goes on along its slope there, and the average
ranks better than each of them and keeps close to calibrated (all three fit their log loss),
so no cross-validated calibration is refitted on top.

What the windows cannot teach is the level of the coming season (Christmas, a summer lull).
:class:`Level` measures it on the last full window before ``as_of`` (the log-odds shift that
made the mean probability there the share who bought); :mod:`surmesure.derive.propensity`
reports it, and ``benchmarks/bench_clv.py --propensity`` scores the probabilities with and
without it (without: the better Brier score on most splits, so the stored ones carry none).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, SplineTransformer, StandardScaler

from surmesure.derive import forecast
from surmesure.derive.forecast import FEATURES, TREES, Purchases

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EDGE = 1e-6  # probabilities are kept inside [EDGE, 1 - EDGE] before their log-odds
MAX_SHIFT = 5.0  # the level correction's bound on the log-odds
RFM = [FEATURES.index(n) for n in ("recency_days", "repeat_purchases", "mean_value")]


class Level(BaseModel):
    """The log-odds ``shift`` added to every probability, learned on an earlier window."""

    model_config = ConfigDict(frozen=True)

    shift: float = 0.0

    def apply(self, probability: Array) -> Array:
        if self.shift == 0.0:
            return probability
        clipped = np.clip(probability, EDGE, 1 - EDGE)
        return np.asarray(expit(logit(clipped) + self.shift), np.float64)

    @classmethod
    def learn(cls, probability: Array, bought: npt.NDArray[np.bool_]) -> Level:
        """The shift that makes the mean of ``probability`` the share who ``bought``."""
        rate = float(np.mean(bought))
        clipped = np.clip(probability, EDGE, 1 - EDGE)
        if not 0 < rate < 1:
            return cls()

        def gap(shift: float) -> float:
            return float(expit(logit(clipped) + shift).mean()) - rate

        if gap(-MAX_SHIFT) > 0 or gap(MAX_SHIFT) < 0:
            return cls(shift=MAX_SHIFT if gap(MAX_SHIFT) < 0 else -MAX_SHIFT)
        return cls(shift=float(brentq(gap, -MAX_SHIFT, MAX_SHIFT, xtol=1e-6)))


def _signed_log1p(x: Array) -> Array:
    return np.asarray(np.log1p(np.abs(x)) * np.sign(x), np.float64)


def _splines() -> Pipeline:
    return make_pipeline(
        FunctionTransformer(_signed_log1p),
        StandardScaler(),
        SplineTransformer(n_knots=5, degree=3),
        LogisticRegression(C=0.1, max_iter=3000),
    )


def rfm_logistic() -> Pipeline:
    """A logistic regression on the ``RFM`` columns of the features (log1p, standardized)."""
    return make_pipeline(
        ColumnTransformer([("rfm", FunctionTransformer(np.log1p), RFM)]),
        StandardScaler(),
        LogisticRegression(),
    )


def _features(f: forecast.Frame) -> Array:
    return np.nan_to_num(f.features, nan=-1.0)


class Propensity:
    """The averaged classifiers for ``days`` (none on a short history) and the level."""

    def __init__(
        self,
        days: int,
        trees: HistGradientBoostingClassifier | None,
        splines: Pipeline | None,
        rfm: Pipeline | None = None,
        level: Level | None = None,
    ) -> None:
        self.days = days
        self.trees = trees
        self.splines = splines
        self.rfm = rfm
        self.level = level or Level()

    @property
    def fitted(self) -> bool:
        return self.trees is not None and self.splines is not None and self.rfm is not None

    def with_level(self, level: Level) -> Propensity:
        return Propensity(self.days, self.trees, self.splines, self.rfm, level)

    def predict(self, p: Purchases, as_of: int) -> tuple[IntArray, Array]:
        """Each buyer's probability at ``as_of`` (NaN without classifiers), buyers sorted."""
        f, _ = forecast.frame(p, as_of, self.days)
        if self.trees is None or self.splines is None or self.rfm is None:
            return f.people, np.full(len(f.people), np.nan)
        x = _features(f)
        members = (self.trees, self.splines, self.rfm)
        average = sum(m.predict_proba(x)[:, 1] for m in members) / len(members)
        return f.people, self.level.apply(np.asarray(average, np.float64))


def fit(p: Purchases, as_of: int, days: int) -> Propensity:
    """Train on the windows of ``days`` ending by ``as_of`` (no level); no classifiers when
    the history is too short or one class is missing."""
    p = p.until(as_of).sample(forecast.MAX_TRAIN_PEOPLE)
    windows = forecast.training_windows(p, as_of, days) if p.day.size else None
    if windows is None:
        return Propensity(days, None, None)
    frames, _, targets = windows
    features = np.vstack([_features(f) for f in frames])
    bought = np.concatenate(targets) > 0
    if len(bought) > forecast.MAX_TRAIN_ROWS:
        keep = np.random.default_rng(0).choice(len(bought), forecast.MAX_TRAIN_ROWS, replace=False)
        features, bought = features[keep], bought[keep]
    if bought.all() or not bought.any():
        return Propensity(days, None, None)
    trees = HistGradientBoostingClassifier(max_iter=150, **TREES).fit(features, bought)
    rfm = rfm_logistic().fit(features, bought)
    return Propensity(days, trees, _splines().fit(features, bought), rfm)
