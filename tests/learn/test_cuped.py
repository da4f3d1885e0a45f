"""CUPED: variance shrinks by (1 - ρ²) and the estimate stays unbiased."""

from __future__ import annotations

import numpy as np

from surmesure.learn import Moments, compare

EFFECT = 0.3


def simulate(rng: np.random.Generator, n: int, rho: float, effect: float) -> Moments:
    x = rng.normal(5.0, 2.0, n)
    noise = rng.normal(0.0, 2.0, n)
    y = 1.0 + effect + rho * x + np.sqrt(1 - rho**2) * noise
    return Moments.of(y, covariate=x)


def test_variance_reduction_matches_one_minus_rho_squared() -> None:
    rng = np.random.default_rng(11)
    for rho in (0.3, 0.6, 0.9):
        control = simulate(rng, 50_000, rho, 0.0)
        treatment = simulate(rng, 50_000, rho, EFFECT)
        adjusted = compare(control, treatment)
        plain = compare(control, treatment, cuped=False)
        ratio = adjusted.absolute.std_error**2 / plain.absolute.std_error**2
        assert abs(ratio - (1 - rho**2)) < 0.02, (rho, ratio)
        assert adjusted.theta != 0 and plain.theta == 0


def test_cuped_estimate_is_unbiased_and_tighter_across_replications() -> None:
    rng = np.random.default_rng(12)
    rho, n, reps = 0.7, 2000, 400
    adjusted, plain = [], []
    for _ in range(reps):
        control, treatment = simulate(rng, n, rho, 0.0), simulate(rng, n, rho, EFFECT)
        adjusted.append(compare(control, treatment).absolute.estimate)
        plain.append(compare(control, treatment, cuped=False).absolute.estimate)
    est = np.asarray(adjusted)
    standard_error = est.std(ddof=1) / np.sqrt(reps)
    assert abs(est.mean() - EFFECT) < 4 * standard_error
    # the sampling spread itself shrinks by about sqrt(1 - rho^2)
    assert abs(est.var(ddof=1) / np.var(plain, ddof=1) - (1 - rho**2)) < 0.12


def test_cuped_theta_is_the_pooled_regression_slope() -> None:
    rng = np.random.default_rng(13)
    control, treatment = simulate(rng, 3000, 0.5, 0.0), simulate(rng, 3000, 0.5, EFFECT)
    rng = np.random.default_rng(13)
    xs, ys = [], []
    for effect in (0.0, EFFECT):
        x = rng.normal(5.0, 2.0, 3000)
        noise = rng.normal(0.0, 2.0, 3000)
        xs.append(x)
        ys.append(1.0 + effect + 0.5 * x + np.sqrt(0.75) * noise)
    x, y = np.concatenate(xs), np.concatenate(ys)
    slope = np.cov(x, y)[0, 1] / np.var(x, ddof=1)
    assert abs(compare(control, treatment).theta - slope) < 1e-9
