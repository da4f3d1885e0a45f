"""Fit an uplift learner on half of a past experiment and judge it on the other half.

The split is stratified by treatment so both halves keep the experiment's treated share. The
Qini curve, Qini coefficient, AUUC, the uplift gate's profit and the value of treating the top
10%, 20% and 50% by predicted uplift (against everyone and random, with bootstrap intervals) are
all computed on the held-out half; totals are scaled to the people of the whole experiment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import train_test_split

from surmesure.errors import InvalidInput
from surmesure.learn.uplift.learners import make_learner
from surmesure.learn.uplift.metrics import Curve, UpliftScores, qini_curve, score_uplift
from surmesure.learn.uplift.policy import PolicyProfit, policy_profit
from surmesure.learn.uplift.targeting import Targeting, targeting_value

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Split:
    train: npt.NDArray[np.intp]
    test: npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class UpliftReport:
    """One learner judged out of sample: scores, Qini curve, policy profit, top-share targeting,
    predictions."""

    learner: str
    n_train: int
    n_test: int
    scores: UpliftScores
    qini: Curve
    profit: PolicyProfit
    targeting: Targeting
    uplift: Array
    mean_uplift: float


def stratified_split(treated: npt.ArrayLike, test_size: float = 0.5, seed: int = 0) -> Split:
    """Row indices of a train and a test part, each with the same treated share."""
    t = np.asarray(treated).ravel()
    if not 0.0 < test_size < 1.0:
        raise InvalidInput(
            f"Test share {test_size} is not between 0 and 1.", field="test_size", hint="use 0.5"
        )
    rows = np.arange(t.size)
    train, test = train_test_split(rows, test_size=test_size, stratify=t, random_state=seed)
    return Split(np.sort(train), np.sort(test))


def fit_and_evaluate(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    treated: npt.ArrayLike,
    learner: str = "x",
    value: float = 1.0,
    cost: float = 0.0,
    seed: int = 0,
    binary: bool | None = None,
) -> UpliftReport:
    """Fit ``learner`` ("t", "x", "dr" or "s") on a stratified half, evaluate on the other."""
    x_ = np.asarray(x, dtype=np.float64)
    y_ = np.asarray(y, dtype=np.float64).ravel()
    t = np.asarray(treated).ravel().astype(np.int8)
    if binary is None:
        binary = bool(np.isin(y_, (0.0, 1.0)).all())
    split = stratified_split(t, 0.5, seed)
    model = make_learner(learner, binary, seed)
    model.fit(x_[split.train], y_[split.train], t[split.train])
    uplift = model.predict(x_[split.test])
    y_test, t_test = y_[split.test], t[split.test]
    return UpliftReport(
        learner=learner,
        n_train=int(split.train.size),
        n_test=int(split.test.size),
        scores=score_uplift(y_test, uplift, t_test),
        qini=qini_curve(y_test, uplift, t_test),
        profit=policy_profit(uplift, y_test, t_test, value, cost, population=y_.size),
        targeting=targeting_value(
            uplift, y_test, t_test, value, cost, population=y_.size, seed=seed
        ),
        uplift=uplift,
        mean_uplift=float(uplift.mean()),
    )
