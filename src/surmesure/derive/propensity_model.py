"""P(at least one purchase in the next ``days`` days) per buyer, learned from the shop's past.

Three classifiers trained on the same stacked earlier windows as the purchases forecast: gradient
boosting (``HistGradientBoostingClassifier``) and a logistic regression on cubic splines of
every feature of the forecast (:data:`surmesure.derive.forecast.FEATURES`, with the rates of
:data:`RATES`; signed log1p, standardized, ``SplineTransformer``), and a logistic regression on
RFM alone (recency, frequency, mean value; log1p, standardized). The windows always have shorter
histories than ``as_of``, and the trees and the splines hold flat past their range: repeat
purchases, recency and the last year's count grow with the history, so each is also given
relative to the buyer's age or rhythm (:data:`RATES`), which stays within the windows' range as
histories lengthen. The RFM regression goes on along its slope there.

A fourth member is BG/NBD's own P(a purchase in the next ``days``) at ``as_of``
(:func:`surmesure.derive.bgnbd.p_purchase`, the model the features already fit): it follows
every buyer past the windows' histories by its model of the rate and the drop-out, so it adds
ranking where the classifiers hold flat. It is not fitted to the windows' outcomes, so it brings
its ranking, not its level: the average of the four is moved in log-odds until its mean is the
three classifiers' mean, and as all three fit their log loss on the windows the probabilities
stay close to calibrated. No calibration is refitted on top: one fitted on the last window
before ``as_of`` (isotonic or Platt) learns that window's season, and on the benchmark's splits
it beat the logistic regression on fewer of them than none.

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

from surmesure.derive import bgnbd, forecast
from surmesure.derive.forecast import FEATURES, TREES, Purchases

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EDGE = 1e-6  # probabilities are kept inside [EDGE, 1 - EDGE] before their log-odds
MAX_SHIFT = 5.0  # the level correction's bound on the log-odds
RFM = [FEATURES.index(n) for n in ("recency_days", "repeat_purchases", "mean_value")]
RATES = (
    "repeat_purchases_per_year",  # repeat purchases per 365 days of age
    "recency_share_of_age",  # recency over age
    "recency_over_mean_gap",  # how overdue against the buyer's own rhythm
    "last_365_per_year",  # the last year's purchase days per 365 days of it lived
)
_AGE, _RECENCY, _REPEAT, _LAST_365, _GAP = (
    FEATURES.index(n)
    for n in (
        "customer_age_days",
        "recency_days",
        "repeat_purchases",
        "last_365",
        "mean_gap_days",
    )
)


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
        return cls.matching(probability, float(np.mean(bought)))

    @classmethod
    def matching(cls, probability: Array, rate: float) -> Level:
        """The shift that makes the mean of ``probability`` ``rate`` (bounded by
        ``MAX_SHIFT``; none when ``rate`` is 0 or 1)."""
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
    """The forecast's features, then the :data:`RATES`; a missing value (no gap before a
    second purchase) as -1."""
    a = f.features
    age = a[:, _AGE] + 1.0
    recency = a[:, _RECENCY]
    # one purchase day: no gap yet, and the age is the least it will be
    gap = np.where(np.isnan(a[:, _GAP]), age, a[:, _GAP])
    rates = (
        a[:, _REPEAT] / age * 365,
        recency / age,
        recency / np.maximum(gap, 1.0),
        a[:, _LAST_365] / np.minimum(age, 365.0) * 365,
    )
    return np.nan_to_num(np.column_stack([a, *rates]), nan=-1.0)


class Propensity:
    """The classifiers for ``days`` (none on a short history), averaged with BG/NBD, and the
    season's level (none unless given)."""

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

    def members(self, p: Purchases, as_of: int) -> tuple[IntArray, Array]:
        """Each buyer's probability at ``as_of`` by member (columns: trees, splines, RFM,
        BG/NBD), buyers sorted; NaN without classifiers."""
        f, model = forecast.frame(p, as_of, self.days)
        if self.trees is None or self.splines is None or self.rfm is None:
            return f.people, np.full((len(f.people), 4), np.nan)
        x = _features(f)
        u = model.unit_days
        columns = [m.predict_proba(x)[:, 1] for m in (self.trees, self.splines, self.rfm)]
        columns.append(bgnbd.p_purchase(model.bgnbd, self.days / u, f.x, f.t_x / u, f.T / u))
        return f.people, np.column_stack(columns).astype(np.float64)

    def predict(self, p: Purchases, as_of: int) -> tuple[IntArray, Array]:
        """Each buyer's probability at ``as_of`` (NaN without classifiers), buyers sorted: the
        average of the four members at the three classifiers' level, then :attr:`level`."""
        people, members = self.members(p, as_of)
        if not self.fitted:
            return people, members[:, 0]
        average = members.mean(axis=1)
        # BG/NBD ranks; the level stays the one the classifiers learnt from the windows
        at_level = Level.matching(average, float(members[:, :3].mean())).apply(average)
        return people, self.level.apply(at_level)


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
