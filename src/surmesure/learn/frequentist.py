"""Fixed-horizon tests: difference of proportions and of means, absolute and relative lift.

Means use Welch's t-test (unequal variances, Welch-Satterthwaite degrees of freedom); 0/1
metrics use the Wald z-test of two proportions. Either can be forced with ``distribution``
(gbstats uses the t distribution for both). Two-sided throughout.

The relative lift r = (treatment - control) / control gets two intervals. ``relative`` uses the
delta method, as gbstats does, so it can disagree with the test: with a noisy control mean it
may hold 0 while the difference is significant. ``relative_fieller`` is Fieller's interval,
every r whose hypothesis D - r M = 0 (D the difference of means, M the raw control mean) the
same t or z test does not reject; r = 0 is the test of the difference itself, so its interval
excludes 0 exactly when the absolute p-value is below alpha, and its p-value is that one. When
the control mean is itself not distinguishable from 0 the set is unbounded and ``reason`` says
so: the whole line when the test does not reject, else the ray away from 0 that holds the
estimate (e.g. [+40%, +inf)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import special

from surmesure.errors import InvalidInput
from surmesure.learn.effects import Arm, Effect, Scale, arms, effect
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
    relative_fieller: Lift | None = None  # fixed horizon only

    @property
    def reason(self) -> str | None:
        fieller = self.relative_fieller.reason if self.relative_fieller else None
        return self.absolute.reason or self.relative.reason or fieller


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


UNBOUNDED = "the control mean is too uncertain for a bounded relative interval"


def fieller_lift(a: Arm, b: Arm, relative: Lift, absolute: Lift, alpha: float, dof: float) -> Lift:
    """Fieller's interval of the relative lift of ``b`` over ``a``: the r solving
    (D - r M)² <= q² var(D - r M), q the two-sided critical value, as a quadratic in r."""
    if relative.reason is not None or absolute.reason is not None:
        return relative
    if math.isinf(dof):
        q = float(special.ndtri(1 - alpha / 2))
    else:
        q = float(special.stdtrit(dof, 1 - alpha / 2))
    d, m = b.mean - a.mean, a.raw_mean
    var_d = a.variance / a.n + b.variance / b.n
    var_m = a.raw_variance / a.n
    cov_dm = -a.cross / a.n
    quad = m * m - q * q * var_m
    half = d * m - q * q * cov_dm
    const = d * d - q * q * var_d
    if quad > 0:
        root = math.sqrt(max(half * half - quad * const, 0.0))
        low, high = (half - root) / quad, (half + root) / quad
        return Lift(relative.estimate, relative.std_error, low, high, absolute.p_value)
    low, high = _open_ended(quad, half, const, relative.estimate)
    return Lift(relative.estimate, relative.std_error, low, high, absolute.p_value, UNBOUNDED)


def _open_ended(quad: float, half: float, const: float, estimate: float) -> tuple[float, float]:
    """The part of {r: quad r² - 2 half r + const <= 0}, quad <= 0, that holds ``estimate``.

    When the test does not reject (const <= 0, so 0 is in the set) the whole line is given;
    otherwise the set is two rays away from 0 and the one holding the estimate is given.
    """
    if const <= 0:
        return -math.inf, math.inf
    if quad == 0:
        edge = const / (2 * half)
    else:
        root = math.sqrt(half * half - quad * const)
        inner = sorted(((half - root) / quad, (half + root) / quad))
        edge = inner[1] if estimate >= inner[1] else inner[0]
    return (edge, math.inf) if estimate >= edge else (-math.inf, edge)


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
    absolute = fixed_lift(abs_effect, alpha, dof)
    relative = fixed_lift(effects["relative"], alpha, dof)
    return Comparison(
        method="fixed",
        control_n=control.n,
        treatment_n=treatment.n,
        control_mean=control.mean,
        treatment_mean=treatment.mean,
        absolute=absolute,
        relative=relative,
        alpha=alpha,
        dof=dof,
        theta=theta,
        relative_fieller=fieller_lift(a, b, relative, absolute, alpha, dof),
    )
