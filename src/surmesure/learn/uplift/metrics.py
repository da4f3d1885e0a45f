"""Qini and uplift curves, the Qini coefficient and the area under the uplift curve (AUUC).

People are ranked by a score (predicted uplift, highest first); people with tied scores enter
together, so a constant score gives the straight random-targeting line. For the top ``k``:

- Qini curve: ``Y_t(k) - Y_c(k) * N_t(k) / N_c(k)``, the incremental outcome among the
  targeted treated people, the control total rescaled to the treated count (0 while no control
  person is ranked yet).
- Uplift curve: ``(Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k`` (each mean 0 while its group is empty).

The Qini coefficient is the area between the Qini curve and the random line, divided by the same
area for the perfect ranking of the observed outcomes (treated people by outcome descending,
then untreated people by outcome ascending): 1 for that ranking, about 0 for a random score, below
0 for a harmful one. Areas use the trapezoidal rule over ``k`` = 0 .. n. This is the definition
of scikit-uplift's ``qini_auc_score`` (``negative_effect=True``), so figures compare with it.

AUUC here is the area under the uplift curve with both axes per person (``k / n`` and
``curve / n``): the average incremental outcome per person over every targeting depth, in outcome
units. ``auuc_gain`` subtracts the random line's area (half the average treatment effect).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from surmesure.errors import InvalidInput

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Curve:
    """A gain curve: ``count[i]`` people targeted (from 0 to n), ``gain[i]`` incremental outcome."""

    count: Array
    gain: Array

    @property
    def n(self) -> int:
        return int(self.count[-1])


@dataclass(frozen=True, slots=True)
class UpliftScores:
    """Out-of-sample ranking quality of one score; ``reason`` says why a figure is NaN."""

    qini_coefficient: float
    auuc: float
    auuc_gain: float
    n: int
    reason: str | None = None


def _check(
    y: npt.ArrayLike, score: npt.ArrayLike, treated: npt.ArrayLike
) -> tuple[Array, Array, Array]:
    y_ = np.asarray(y, dtype=np.float64).ravel()
    s_ = np.asarray(score, dtype=np.float64).ravel()
    t_ = np.asarray(treated, dtype=np.float64).ravel()
    if not (y_.size == s_.size == t_.size):
        raise InvalidInput(
            f"Outcome, score and treatment have sizes {y_.size}, {s_.size}, {t_.size}.",
            field="score",
            hint="give one outcome, score and treatment flag per person",
        )
    if not np.isin(t_, (0.0, 1.0)).all():
        raise InvalidInput(
            "Treatment flags must be 0 or 1.", field="treated", hint="encode treated as 1"
        )
    if not (np.isfinite(y_).all() and np.isfinite(s_).all()):
        raise InvalidInput(
            "Outcome and score must be finite numbers.",
            field="score",
            hint="drop or impute missing values first",
        )
    return y_, s_, t_


def _cumulative(y: Array, score: Array, treated: Array) -> tuple[Array, Array, Array, Array, Array]:
    order = np.argsort(-score, kind="mergesort")
    s, y, t = score[order], y[order], treated[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    n_t = np.cumsum(t)[ends]
    y_t = np.cumsum(y * t)[ends]
    y_c = np.cumsum(y * (1.0 - t))[ends]
    count = (ends + 1).astype(np.float64)
    return count, n_t, count - n_t, y_t, y_c


def _ratio(num: Array, den: Array) -> Array:
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def qini_curve(y: npt.ArrayLike, score: npt.ArrayLike, treated: npt.ArrayLike) -> Curve:
    """The Qini curve of ``score`` (higher = treat first), from ``k = 0``."""
    count, n_t, n_c, y_t, y_c = _cumulative(*_check(y, score, treated))
    gain = y_t - y_c * _ratio(n_t, n_c)
    return Curve(np.r_[0.0, count], np.r_[0.0, gain])


def uplift_curve(y: npt.ArrayLike, score: npt.ArrayLike, treated: npt.ArrayLike) -> Curve:
    """The uplift (cumulative gain) curve of ``score``, from ``k = 0``."""
    count, n_t, n_c, y_t, y_c = _cumulative(*_check(y, score, treated))
    gain = (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * count
    return Curve(np.r_[0.0, count], np.r_[0.0, gain])


def perfect_score(y: npt.ArrayLike, treated: npt.ArrayLike) -> Array:
    """The ranking that maximizes the Qini area on these observed outcomes."""
    y_ = np.asarray(y, dtype=np.float64)
    t_ = np.asarray(treated, dtype=np.float64)
    return y_ * t_ - y_ * (1.0 - t_)


def area(curve: Curve) -> float:
    """Trapezoidal area under ``curve`` minus the straight line from 0 to its end point."""
    under = float(np.trapezoid(curve.gain, curve.count))
    return under - curve.n * float(curve.gain[-1]) / 2.0


def qini_coefficient(y: npt.ArrayLike, score: npt.ArrayLike, treated: npt.ArrayLike) -> float:
    """Area between the Qini curve and random targeting over the perfect ranking's; NaN when the
    perfect ranking does no better than random (e.g. a constant outcome)."""
    y_, s_, t_ = _check(y, score, treated)
    best = area(qini_curve(y_, perfect_score(y_, t_), t_))
    if best <= 0:
        return float("nan")
    return area(qini_curve(y_, s_, t_)) / best


def auuc(y: npt.ArrayLike, score: npt.ArrayLike, treated: npt.ArrayLike) -> tuple[float, float]:
    """(AUUC, AUUC minus random targeting's), per person, in outcome units."""
    curve = uplift_curve(y, score, treated)
    n = float(curve.n)
    under = float(np.trapezoid(curve.gain / n, curve.count / n))
    return under, under - float(curve.gain[-1]) / n / 2.0


def score_uplift(y: npt.ArrayLike, score: npt.ArrayLike, treated: npt.ArrayLike) -> UpliftScores:
    """Qini coefficient and AUUC of ``score``; NaN with a reason when a group is empty."""
    y_, s_, t_ = _check(y, score, treated)
    n_t = int(t_.sum())
    if n_t == 0 or n_t == t_.size:
        nan = float("nan")
        return UpliftScores(nan, nan, nan, t_.size, "needs both treated and control people")
    qini = qini_coefficient(y_, s_, t_)
    under, gain = auuc(y_, s_, t_)
    reason = None if np.isfinite(qini) else "the outcome does not separate treated from control"
    return UpliftScores(qini, under, gain, t_.size, reason)
