"""Meta-learners of the conditional average treatment effect on scikit-learn models.

Each learner is fitted on a past randomized experiment (features ``x``, outcome ``y``, treated
flag ``treated`` in {0, 1}) and predicts, per person, the uplift: the expected outcome if treated
minus the expected outcome if not, in outcome units. A classifier as outcome model predicts the
probability of the positive class (so binary outcomes give uplift in probability points); a
regressor predicts the mean.

- :class:`SLearner` one model with the treatment flag as a feature (a baseline).
- :class:`TLearner` one outcome model per group; uplift is the difference of predictions.
- :class:`XLearner` (Künzel et al., 2019) imputes each person's effect with the other group's
  model, regresses it on features per group and blends both by the propensity score.
- :class:`DRLearner` (Kennedy, 2023) regresses the doubly-robust (AIPW) pseudo-outcome, with
  cross-fitted outcome models, on features.

In a randomized experiment the propensity is the treated share, which the X- and DR-learners use
by default; give the X-learner a classifier as ``propensity`` to estimate it per person instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sklearn.base import clone, is_classifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold

from surmesure.errors import InvalidInput

Array = npt.NDArray[np.float64]


class UpliftLearner(Protocol):
    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike, treated: npt.ArrayLike) -> Any: ...

    def predict(self, x: npt.ArrayLike) -> Array: ...


def outcome_model(binary: bool, random_state: int = 0) -> Any:
    """A regularized gradient-boosting outcome model (classifier for a 0/1 outcome)."""
    params: dict[str, Any] = {
        "max_iter": 100,
        "learning_rate": 0.05,
        "max_leaf_nodes": 8,
        "min_samples_leaf": 200,
        "random_state": random_state,
    }
    if binary:
        return HistGradientBoostingClassifier(**params)
    return HistGradientBoostingRegressor(**params)


def effect_model(rows: int, random_state: int = 0) -> Any:
    """An additive regressor of imputed effects: 30 boosting rounds of small trees that each split
    on a single feature, with leaves holding at least 5% of the ``rows`` it will be fitted on.

    An imputed effect carries the whole outcome noise of one person, far larger than the spread of
    the effects themselves, and a heavy-tailed outcome (spend: mostly zeros, a few large baskets)
    makes it worse. Hence three choices, each of which raised the Qini coefficient on Hillstrom
    spend over 60 splits of ``benchmarks/bench_uplift.py`` and left visit unchanged:

    - a fixed number of rounds: scikit-learn's automatic early stopping (on above 10,000 rows)
      judges each round on a 10% validation split of those noisy targets, and on spend it cut
      half of the effect models to 10-15 of their 30 rounds, by the luck of that split;
    - no interactions: the model can learn "newer customers respond more" but cannot chase the
      noise of a few big spenders through a combination of traits;
    - leaves of 5% rather than 20%, so that a smaller segment (say multichannel buyers, 12%) can
      stand out.
    """
    return HistGradientBoostingRegressor(
        max_iter=30,
        learning_rate=0.05,
        max_leaf_nodes=4,
        min_samples_leaf=max(20, rows // 20),
        interaction_cst="no_interactions",
        early_stopping=False,
        random_state=random_state,
    )


def predict_mean(model: Any, x: Array) -> Array:
    """E[y | x] from a fitted regressor, or P(y = 1 | x) from a fitted binary classifier."""
    if is_classifier(model):
        return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)
    return np.asarray(model.predict(x), dtype=np.float64)


def _arrays(
    x: npt.ArrayLike, y: npt.ArrayLike, treated: npt.ArrayLike
) -> tuple[Array, Array, npt.NDArray[np.bool_]]:
    x_ = np.asarray(x, dtype=np.float64)
    y_ = np.asarray(y, dtype=np.float64).ravel()
    t_ = np.asarray(treated).ravel()
    if x_.ndim != 2 or not (x_.shape[0] == y_.size == t_.size):
        raise InvalidInput(
            f"Features {x_.shape}, outcome {y_.size} and treatment {t_.size} do not line up.",
            field="x",
            hint="give a 2-D feature matrix with one row per outcome and treatment flag",
        )
    t_bool = t_.astype(bool)
    if t_bool.all() or not t_bool.any():
        raise InvalidInput(
            "An uplift model needs treated and control people.",
            field="treated",
            hint="check the treatment and control values",
        )
    return x_, y_, t_bool


@dataclass
class SLearner:
    model: Any = field(default_factory=lambda: outcome_model(True))

    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike, treated: npt.ArrayLike) -> SLearner:
        x_, y_, t = _arrays(x, y, treated)
        self.fitted_ = clone(self.model).fit(np.column_stack([x_, t]), y_)
        return self

    def predict(self, x: npt.ArrayLike) -> Array:
        x_ = np.asarray(x, dtype=np.float64)
        ones, zeros = np.ones(x_.shape[0]), np.zeros(x_.shape[0])
        on = predict_mean(self.fitted_, np.column_stack([x_, ones]))
        off = predict_mean(self.fitted_, np.column_stack([x_, zeros]))
        return on - off


@dataclass
class TLearner:
    model: Any = field(default_factory=lambda: outcome_model(True))

    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike, treated: npt.ArrayLike) -> TLearner:
        x_, y_, t = _arrays(x, y, treated)
        self.treated_ = clone(self.model).fit(x_[t], y_[t])
        self.control_ = clone(self.model).fit(x_[~t], y_[~t])
        return self

    def predict(self, x: npt.ArrayLike) -> Array:
        x_ = np.asarray(x, dtype=np.float64)
        return predict_mean(self.treated_, x_) - predict_mean(self.control_, x_)


@dataclass
class XLearner:
    model: Any = field(default_factory=lambda: outcome_model(True))
    effect: Any | None = None
    propensity: Any | None = None

    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike, treated: npt.ArrayLike) -> XLearner:
        x_, y_, t = _arrays(x, y, treated)
        mu1 = clone(self.model).fit(x_[t], y_[t])
        mu0 = clone(self.model).fit(x_[~t], y_[~t])
        d1 = y_[t] - predict_mean(mu0, x_[t])
        d0 = predict_mean(mu1, x_[~t]) - y_[~t]
        self.tau1_ = self._effect(d1.size).fit(x_[t], d1)
        self.tau0_ = self._effect(d0.size).fit(x_[~t], d0)
        self.share_ = float(t.mean())
        self.propensity_ = None
        if self.propensity is not None:
            self.propensity_ = clone(self.propensity).fit(x_, t.astype(int))
        return self

    def _effect(self, rows: int) -> Any:
        return effect_model(rows) if self.effect is None else clone(self.effect)

    def predict(self, x: npt.ArrayLike) -> Array:
        x_ = np.asarray(x, dtype=np.float64)
        e = np.full(x_.shape[0], self.share_)
        if self.propensity_ is not None:
            e = np.clip(predict_mean(self.propensity_, x_), 0.01, 0.99)
        tau1 = np.asarray(self.tau1_.predict(x_), dtype=np.float64)
        tau0 = np.asarray(self.tau0_.predict(x_), dtype=np.float64)
        # tau0 leans on the treated model, tau1 on the control one: trust each as its data allows.
        return e * tau0 + (1.0 - e) * tau1


@dataclass
class DRLearner:
    model: Any = field(default_factory=lambda: outcome_model(True))
    effect: Any | None = None
    folds: int = 2
    random_state: int = 0

    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike, treated: npt.ArrayLike) -> DRLearner:
        x_, y_, t = _arrays(x, y, treated)
        mu0, mu1 = np.empty(y_.size), np.empty(y_.size)
        split = StratifiedKFold(self.folds, shuffle=True, random_state=self.random_state)
        for train, test in split.split(x_, t):
            tt = t[train]
            m1 = clone(self.model).fit(x_[train][tt], y_[train][tt])
            m0 = clone(self.model).fit(x_[train][~tt], y_[train][~tt])
            mu1[test] = predict_mean(m1, x_[test])
            mu0[test] = predict_mean(m0, x_[test])
        e = float(t.mean())
        tf = t.astype(np.float64)
        pseudo = mu1 - mu0 + tf * (y_ - mu1) / e - (1.0 - tf) * (y_ - mu0) / (1.0 - e)
        effect = effect_model(y_.size) if self.effect is None else clone(self.effect)
        self.tau_ = effect.fit(x_, pseudo)
        return self

    def predict(self, x: npt.ArrayLike) -> Array:
        return np.asarray(self.tau_.predict(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def make_learner(name: str, binary: bool, random_state: int = 0) -> UpliftLearner:
    """A learner by name ("t", "x", "dr" or "s") with the default models."""
    model = outcome_model(binary, random_state)
    learners: dict[str, UpliftLearner] = {
        "s": SLearner(model),
        "t": TLearner(model),
        "x": XLearner(model),
        "dr": DRLearner(model, random_state=random_state),
    }
    if name not in learners:
        raise InvalidInput(
            f"Unknown learner {name!r}.", field="learner", hint=f"choose one of {sorted(learners)}"
        )
    return learners[name]
