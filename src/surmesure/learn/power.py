"""Power, sample size and minimum detectable effect of a two-sided two-sample test.

Effects are standardized (Cohen's d = absolute difference / per-person standard deviation);
``ratio`` is treatment size / control size. ``test="z"`` is the normal approximation, ``"t"``
the exact noncentral t with n₁ + n₂ - 2 degrees of freedom (equal variances). Both tails count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import optimize, special, stats

from surmesure.errors import InvalidInput

PowerTest = Literal["z", "t"]


@dataclass(frozen=True, slots=True)
class PowerPlan:
    """A design: people per variant, the absolute MDE, its standardized size, alpha, power."""

    control_n: float
    treatment_n: float
    effect_size: float
    minimum_detectable_effect: float
    alpha: float
    power: float


def _check(name: str, value: float, low: float = 0.0, high: float = 1.0) -> None:
    if not low < value < high:
        raise InvalidInput(
            f"Power '{name}' has value {value!r}.",
            field=name,
            hint=f"use a value strictly between {low:g} and {high:g}",
        )


def power(
    effect_size: float,
    control_n: float,
    alpha: float = 0.05,
    ratio: float = 1.0,
    test: PowerTest = "z",
) -> float:
    """Probability of rejecting H0 at level ``alpha`` when the true standardized effect is given."""
    _check("alpha", alpha)
    _check("ratio", ratio, 0.0, math.inf)
    _check("control_n", control_n, 1.0 if test == "t" else 0.0, math.inf)
    n_eff = 1 / (1 / control_n + 1 / (control_n * ratio))
    shift = effect_size * math.sqrt(n_eff)
    if test == "z":
        crit = float(stats.norm.isf(alpha / 2))
        return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))
    df = control_n * (1 + ratio) - 2
    crit = float(stats.t.isf(alpha / 2, df))
    upper = 1 - float(special.nctdtr(df, shift, crit))
    lower = float(special.nctdtr(df, shift, -crit))
    # the noncentral t CDF returns NaN deep in a tail, where the probability is ~0
    upper = float(stats.nct.sf(crit, df, shift)) if math.isnan(upper) else upper
    return upper + (0.0 if math.isnan(lower) else lower)


def sample_size(
    effect_size: float,
    alpha: float = 0.05,
    target_power: float = 0.8,
    ratio: float = 1.0,
    test: PowerTest = "z",
) -> float:
    """People needed in control (treatment: ``ratio`` times that), not rounded up."""
    _check("target_power", target_power)
    if effect_size == 0 or not math.isfinite(effect_size):
        raise InvalidInput(
            f"Power 'effect_size' has value {effect_size!r}.",
            field="effect_size",
            hint="pass a non-zero standardized effect (difference / standard deviation)",
        )
    d = abs(effect_size)
    z = float(stats.norm.isf(alpha / 2) + stats.norm.isf(1 - target_power))
    guess = (z / d) ** 2 * (1 + 1 / ratio)
    low = 2.0 + 1e-9 if test == "t" else 1e-9
    high = max(guess * 4, 10.0)
    return float(
        optimize.brentq(
            lambda n: power(d, n, alpha, ratio, test) - target_power, low, high, xtol=1e-10
        )
    )


def minimum_detectable_effect(
    control_n: float,
    std_dev: float,
    alpha: float = 0.05,
    target_power: float = 0.8,
    ratio: float = 1.0,
    test: PowerTest = "z",
) -> PowerPlan:
    """Smallest absolute effect detected with ``target_power`` given the sample and spread.

    For a rate p, ``std_dev`` is sqrt(p(1 - p)).
    """
    _check("target_power", target_power)
    _check("std_dev", std_dev, 0.0, math.inf)
    floor = power(0.0, control_n, alpha, ratio, test)
    if target_power <= floor:
        raise InvalidInput(
            f"Power {target_power!r} is below the false-positive rate {floor:.3g}.",
            field="target_power",
            hint="ask for a power above alpha",
        )
    z = float(stats.norm.isf(alpha / 2) + stats.norm.isf(1 - target_power))
    high = 4 * z * math.sqrt(1 / control_n + 1 / (control_n * ratio))
    d = float(
        optimize.brentq(
            lambda e: power(e, control_n, alpha, ratio, test) - target_power, 0.0, high, xtol=1e-14
        )
    )
    return PowerPlan(control_n, control_n * ratio, d, d * std_dev, alpha, target_power)
