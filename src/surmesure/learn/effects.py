"""Point estimate and variance of a treatment effect from two variants' moments.

The shared core of the frequentist, sequential and Bayesian engines. Absolute effect: difference
of means. Relative effect: (treatment - control) / control, with its variance by the delta
method. With a covariate on both sides the means are CUPED-adjusted with one θ pooled over the
two variants (θ = cov(x, y) / var(x) on the pooled moments), as GrowthBook's gbstats does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from surmesure.learn.moments import Moments, covariance, covariate_variance

Scale = Literal["absolute", "relative"]

EMPTY = "a variant has no people"
ZERO_VARIANCE = "the metric does not vary in a variant"
ZERO_BASELINE = "the control mean is zero, so a relative effect is undefined"
TOO_FEW = "a variant has fewer than two people"


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant as the tests see it: n, mean (CUPED-adjusted if so), raw mean, variance.

    Per person: ``variance`` of the adjusted value, ``raw_variance`` of the raw value and
    ``cross`` the covariance of the two (all three equal without CUPED).
    """

    n: int
    mean: float
    raw_mean: float
    variance: float
    raw_variance: float
    cross: float


@dataclass(frozen=True, slots=True)
class Effect:
    """Estimate, variance of the estimate and Welch-Satterthwaite degrees of freedom.

    ``reason`` is set (and the numbers are NaN) when the effect is undefined.
    """

    estimate: float
    variance: float
    dof: float
    reason: str | None = None

    @property
    def std_error(self) -> float:
        return math.sqrt(self.variance) if self.variance >= 0 else math.nan


UNDEFINED = Effect(math.nan, math.nan, math.nan)


def cuped_theta(control: Moments, treatment: Moments) -> float:
    """θ = cov(x, y) / var(x) over both variants pooled; 0 without covariate or variance."""
    if control.covariate is None or treatment.covariate is None:
        return 0.0
    pooled = control + treatment
    if covariate_variance(pooled) <= 0 or pooled.variance <= 0:
        return 0.0
    return covariance(pooled) / covariate_variance(pooled)


def arm(m: Moments, theta: float = 0.0) -> Arm:
    """The variant's mean and per-person variance after a CUPED adjustment by ``theta``."""
    if theta == 0.0 or m.covariate is None:
        return Arm(m.n, m.mean, m.mean, m.variance, m.variance, m.variance)
    x_mean = m.covariate.sum / m.n if m.n else 0.0
    variance = m.variance + theta * theta * covariate_variance(m) - 2 * theta * covariance(m)
    cross = m.variance - theta * covariance(m)
    return Arm(m.n, m.mean - theta * x_mean, m.mean, variance, m.variance, cross)


def arms(control: Moments, treatment: Moments, cuped: bool = True) -> tuple[Arm, Arm, float]:
    """Both arms, CUPED-adjusted when both carry a covariate and ``cuped``; and θ."""
    theta = cuped_theta(control, treatment) if cuped else 0.0
    return arm(control, theta), arm(treatment, theta), theta


def welch_dof(a: Arm, b: Arm) -> float:
    """Welch-Satterthwaite degrees of freedom of the difference of two means."""
    va, vb = a.variance / a.n, b.variance / b.n
    return (va + vb) ** 2 / (va * va / (a.n - 1) + vb * vb / (b.n - 1))


def undefined_reason(a: Arm, b: Arm, scale: Scale) -> str | None:
    """Why the effect cannot be estimated, or None."""
    if a.n == 0 or b.n == 0:
        return EMPTY
    if a.n < 2 or b.n < 2:
        return TOO_FEW
    if a.variance <= 0 or b.variance <= 0:
        return ZERO_VARIANCE
    if scale == "relative" and (a.mean == 0 or a.raw_mean == 0):
        return ZERO_BASELINE
    return None


def effect(a: Arm, b: Arm, scale: Scale) -> Effect:
    """Effect of ``b`` (treatment) over ``a`` (control) on the given scale.

    Relative variance (delta method): var_b / (μ_a² n_b) + var_a μ_b² / (μ_a⁴ n_a), with the
    raw (unadjusted) means, as in gbstats.
    """
    reason = undefined_reason(a, b, scale)
    if reason is not None:
        return Effect(math.nan, math.nan, math.nan, reason)
    dof = welch_dof(a, b)
    if scale == "absolute":
        return Effect(b.mean - a.mean, b.variance / b.n + a.variance / a.n, dof)
    mu_a, mu_b = a.raw_mean, b.raw_mean
    variance = b.variance / (mu_a**2 * b.n) + a.variance * mu_b**2 / (mu_a**4 * a.n)
    return Effect((b.mean - a.mean) / mu_a, variance, dof)
