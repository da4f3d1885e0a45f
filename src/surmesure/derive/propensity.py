"""Purchase propensity as derive stores it: per buyer, the calibrated probability of at least
one purchase in the next 30 and 90 days (``p_purchase_30d``, ``p_purchase_90d``), usable in
segments and templates like any derived metric.

The model is :class:`surmesure.derive.propensity_model.Propensity` (the average of gradient
boosting and a spline logistic regression on the forecast's features and a logistic regression
on RFM, trained on earlier windows of the same history, and BG/NBD's own probability, at the
classifiers' level). Before it is trusted, the same recipe
is validated once per horizon: trained on the windows ending ``days`` before ``as_of``, applied
there and scored on what followed, beside a logistic regression on RFM (recency, frequency,
mean value; log1p then standardized) trained on the same windows: AUC (how well it ranks) and
Brier score (how close the probabilities are), and the log-odds shift that would have brought
the recipe's mean to the share who bought there (``level_shift``; reported, not applied). When
the logistic regression scored the better Brier score there, its probabilities are stored
instead (``model = "logistic_rfm"``): the choice rests on the window before ``as_of`` only.
A history too short to learn from leaves the columns NULL, and says so.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import brier_score_loss, roc_auc_score

from surmesure.derive import forecast, propensity_model
from surmesure.derive.forecast import Purchases
from surmesure.derive.propensity_model import Level, Propensity

Array = npt.NDArray[np.float64]

DAYS = (30, 90)
MODEL = "boosting_splines_rfm_bgnbd_average"


def column(days: int) -> str:
    """The ``derived_metrics`` column of the ``days`` propensity."""
    return f"p_purchase_{days}d"


class Fit(BaseModel):
    """A probability against what happened: AUC, Brier score and the mean probability."""

    model_config = ConfigDict(frozen=True)

    auc: float
    brier: float
    mean_probability: float


class PropensityValidation(BaseModel):
    """The recipe (before its level correction) and the RFM logistic regression, trained
    before ``as_of - days`` and scored on the ``days`` that followed, the share of buyers who
    bought then and the log-odds shift that brings the recipe's mean to that share."""

    model_config = ConfigDict(frozen=True)

    buyers: int
    purchase_rate: float
    model: Fit
    logistic_rfm: Fit
    level_shift: float = 0.0


class PropensitySummary(BaseModel):
    """Which model gives ``p_purchase_<days>d`` (``boosting_splines_rfm_bgnbd_average``,
    ``logistic_rfm`` or ``none``) and how both fared in validation."""

    model_config = ConfigDict(frozen=True)

    days: int
    column: str
    model: str
    note: str = ""
    validation: PropensityValidation | None = None


def _fit(probability: Array, bought: npt.NDArray[np.bool_]) -> Fit:
    return Fit(
        auc=float(roc_auc_score(bought, probability)),
        brier=float(brier_score_loss(bought, probability)),
        mean_probability=float(probability.mean()),
    )


def logistic_rfm(p: Purchases, as_of: int, days: int) -> Array | None:
    """The baseline's probabilities at ``as_of`` for every buyer (in the order of
    :func:`surmesure.derive.forecast.frame`), trained on the same windows as the model;
    ``None`` when there are none or one class is missing."""
    windows = forecast.training_windows(p.until(as_of), as_of, days)
    if windows is None:
        return None
    frames, _, targets = windows
    bought = np.concatenate(targets) > 0
    if bought.all() or not bought.any():
        return None
    rfm = propensity_model.rfm_logistic().fit(np.vstack([f.features for f in frames]), bought)
    f, _ = forecast.frame(p, as_of, days)
    return np.asarray(rfm.predict_proba(f.features)[:, 1], np.float64)


def validation(p: Purchases, as_of: int, days: int) -> PropensityValidation | None:
    """Both trained on the windows ending by ``as_of - days``, scored on ``(as_of - days,
    as_of]``; ``None`` when that history is too short or everyone (no one) bought."""
    start = as_of - days
    earlier = p.until(start)
    if earlier.day.size == 0:
        return None
    trial = propensity_model.fit(earlier, start, days)
    baseline = logistic_rfm(earlier, start, days)
    if not trial.fitted or baseline is None:
        return None
    people, predicted = trial.predict(earlier, start)
    bought = forecast.counts(p, people, start, as_of) > 0
    if bought.all() or not bought.any():
        return None
    return PropensityValidation(
        buyers=len(people),
        purchase_rate=float(bought.mean()),
        model=_fit(predicted, bought),
        logistic_rfm=_fit(baseline, bought),
        level_shift=Level.learn(predicted, bought).shift,
    )


def fit(p: Purchases, as_of: int, days: int) -> tuple[Propensity, PropensityValidation | None]:
    """The recipe trained on the windows ending by ``as_of`` and its validation. The level of
    the validation window is reported, not applied: on the benchmark's splits it moved the
    probabilities the wrong way as often as not (that window is another season)."""
    return propensity_model.fit(p, as_of, days), validation(p, as_of, days)


def propensities(
    p: Purchases, as_of: int
) -> tuple[npt.NDArray[np.int64], dict[str, Array], list[PropensitySummary]]:
    """Each buyer's probabilities at ``as_of`` by column (NaN without a model), the buyers'
    ids (sorted) and one summary per horizon of :data:`DAYS`."""
    people = np.unique(p.until(as_of).person)
    values: dict[str, Array] = {}
    summaries = []
    for days in DAYS:
        fitted, checked = fit(p, as_of, days)
        found, probability = fitted.predict(p, as_of)
        assert np.array_equal(found, people)
        values[column(days)] = probability
        if not fitted.fitted:
            summaries.append(
                PropensitySummary(
                    days=days,
                    column=column(days),
                    model="none",
                    note=(
                        f"history too short to learn a {days}-day propensity (needs "
                        f"{forecast.MIN_HISTORY_DAYS + days} days, {forecast.MIN_TRAIN_BUYERS} "
                        "buyers, and some who bought and some who did not): left empty"
                    ),
                )
            )
            continue
        name = MODEL
        if checked is not None and checked.logistic_rfm.brier < checked.model.brier:
            # the simpler model did better on the last window: it gives the probabilities
            baseline = logistic_rfm(p, as_of, days)
            if baseline is not None:
                values[column(days)] = baseline
                name = "logistic_rfm"
        summaries.append(
            PropensitySummary(days=days, column=column(days), model=name, validation=checked)
        )
    return people, values, summaries


def aligned(people: npt.NDArray[np.int64], values: Array, ids: npt.ArrayLike) -> Array:
    """``values`` (one per sorted ``people``) placed on the rows of ``ids``; NaN for an id
    that is not among ``people``."""
    wanted = np.asarray(ids, dtype=np.int64)
    out = np.full(len(wanted), np.nan)
    if len(people) == 0:
        return out
    at = np.minimum(np.searchsorted(people, wanted), len(people) - 1)
    found = people[at] == wanted
    out[found] = values[at[found]]
    return out
