"""Fixed-horizon tests: difference of proportions and of means, absolute and relative lift.

Means use Welch's t-test (unequal variances, Welch-Satterthwaite degrees of freedom); 0/1
metrics use the Wald z-test of two proportions. Either can be forced with ``distribution``
(gbstats uses the t distribution for both). The relative lift's interval comes from the delta
method. Two-sided throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import special

from surmesure.errors import InvalidInput
from surmesure.learn.effects import Effect, Scale, arms, effect
from surmesure.learn.moments import Moments

Distribution = Literal["t", "z"]


@dataclass(frozen=True, slots=True)
class Lift:
    """An effect with its standard error, two-sided interval and p-value (NaN when undefined)."""

    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against control on one metric.

    ``control_mean``/``treatment_mean`` are raw means; ``theta`` is the CUPED coefficient (0
    when no covariate was used); ``dof`` is infinite for a z-test.
    """

    method: Literal["fixed", "sequential"]
    control_n: int
    treatment_n: int
    control_mean: float
    treatment_mean: float
    absolute: Lift
    relative: Lift
    alpha: float
    dof: float
    theta: float

    @property
    def reason(self) -> str | None:
        return self.absolute.reason or self.relative.reason


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(
            f"Test 'alpha' has value {alpha!r}. Not a probability.",
            field="alpha",
            hint="use a significance level between 0 and 1, e.g. 0.05",
        )


def undefined_lift(reason: str | None) -> Lift:
    return Lift(math.nan, math.nan, math.nan, math.nan, math.nan, reason)


def fixed_lift(e: Effect, alpha: float, dof: float) -> Lift:
    """Two-sided interval and p-value of ``e`` under a t (finite ``dof``) or normal law."""
    if e.reason is not None:
        return undefined_lift(e.reason)
    se = e.std_error
    statistic = abs(e.estimate) / se
    if math.isinf(dof):
        width = float(special.ndtri(1 - alpha / 2)) * se
        p_value = float(2 * special.ndtr(-statistic))
    else:
        width = float(special.stdtrit(dof, 1 - alpha / 2)) * se
        p_value = float(2 * special.stdtr(dof, -statistic))
    return Lift(e.estimate, se, e.estimate - width, e.estimate + width, p_value)


def default_distribution(control: Moments, treatment: Moments) -> Distribution:
    return "z" if control.kind == treatment.kind == "binomial" else "t"


def compare(
    control: Moments,
    treatment: Moments,
    alpha: float = 0.05,
    distribution: Distribution | None = None,
    cuped: bool = True,
) -> Comparison:
    """Fixed-horizon comparison of ``treatment`` with ``control``.

    With covariate moments on both sides (and ``cuped``) the means are CUPED-adjusted.
    Undefined cases (empty variant, zero variance, zero control mean for the relative lift)
    give NaN figures and a ``reason``; they never raise.
    """
    check_alpha(alpha)
    law = distribution or default_distribution(control, treatment)
    a, b, theta = arms(control, treatment, cuped)
    effects: dict[Scale, Effect] = {s: effect(a, b, s) for s in ("absolute", "relative")}
    abs_effect = effects["absolute"]
    dof = math.inf if law == "z" else abs_effect.dof
    return Comparison(
        method="fixed",
        control_n=control.n,
        treatment_n=treatment.n,
        control_mean=control.mean,
        treatment_mean=treatment.mean,
        absolute=fixed_lift(abs_effect, alpha, dof),
        relative=fixed_lift(effects["relative"], alpha, dof),
        alpha=alpha,
        dof=dof,
        theta=theta,
    )
