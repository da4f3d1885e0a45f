"""Bayesian results: chance to beat control, expected loss (risk) and credible intervals.

Two models:

- :func:`effect_posterior` — a normal model of the effect (relative or absolute), flat or
  Gaussian prior, the same as GrowthBook's gbstats ``EffectBayesianABTest``. On the absolute
  scale it is the normal model of revenue (or any metric) per person.
- :func:`surmesure.learn.beta_binomial.beta_binomial` — exact Beta-Binomial for rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from surmesure.errors import InvalidInput
from surmesure.learn.effects import Scale, arms, effect
from surmesure.learn.frequentist import check_alpha
from surmesure.learn.moments import Moments


@dataclass(frozen=True, slots=True)
class GaussianPrior:
    """Prior on the effect, on the scale of the analysis; ignored unless ``proper``."""

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False


@dataclass(frozen=True, slots=True)
class BayesianResult:
    """Posterior of the effect of treatment over control.

    ``risk_control`` is the expected loss of keeping control, ``risk_treatment`` that of
    shipping treatment (same scale as the effect). Undefined cases carry a ``reason``, a chance
    to win of 0.5 and NaN figures.
    """

    scale: Scale
    chance_to_win: float
    expected: float
    std_dev: float
    ci_lower: float
    ci_upper: float
    risk_control: float
    risk_treatment: float
    reason: str | None = None


def normal_losses(mu: float, sigma: float) -> tuple[float, float]:
    """(E[max(D, 0)], E[max(-D, 0)]) for D ~ N(mu, sigma²), in closed form."""
    z = mu / sigma
    pdf = float(stats.norm.pdf(z))
    return sigma * pdf + mu * float(stats.norm.cdf(z)), sigma * pdf - mu * float(stats.norm.cdf(-z))


def effect_posterior(
    control: Moments,
    treatment: Moments,
    scale: Scale = "relative",
    alpha: float = 0.05,
    prior: GaussianPrior | None = None,
    inverse: bool = False,
    cuped: bool = True,
) -> BayesianResult:
    """Normal posterior of the effect (data likelihood from the delta method, conjugate prior).

    ``inverse`` marks a metric where lower is better (chance to win and risks flip).
    """
    check_alpha(alpha)
    prior = prior or GaussianPrior()
    if prior.proper and not prior.variance > 0:
        raise InvalidInput(
            f"Prior 'variance' has value {prior.variance!r}.",
            field="prior.variance",
            hint="a proper prior needs a positive variance",
        )
    a, b, _ = arms(control, treatment, cuped)
    e = effect(a, b, scale)
    if e.reason is not None:
        nan = math.nan
        return BayesianResult(scale, 0.5, nan, nan, nan, nan, nan, nan, e.reason)
    precision = 1 / e.variance + (1 / prior.variance if prior.proper else 0.0)
    if prior.proper:
        mean = (e.estimate / e.variance + prior.mean / prior.variance) / precision
    else:
        mean = e.estimate
    sd = math.sqrt(1 / precision)
    chance = float(stats.norm.sf(0, mean, sd))
    gain, loss = normal_losses(mean, sd)
    if inverse:
        chance, gain, loss = 1 - chance, loss, gain
    lower, upper = (float(q) for q in stats.norm.ppf([alpha / 2, 1 - alpha / 2], mean, sd))
    return BayesianResult(scale, chance, mean, sd, lower, upper, gain, loss)
