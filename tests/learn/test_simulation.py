"""A/A simulations: the fixed-horizon test holds its level; the sequential one survives peeking."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from surmesure.learn import Moments, compare, compare_sequential

SIMS = 2000
DAYS = 20
PER_DAY = 200  # people per arm per day


def daily_normal_moments(
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Cumulative (Σy, Σy²) per simulation and day for N(10, 3²) data, drawn exactly from
    the joint law of a day's sum and within-day sum of squares."""
    mu, sigma = 10.0, 3.0
    day_sum = rng.normal(PER_DAY * mu, sigma * np.sqrt(PER_DAY), size=(SIMS, DAYS))
    within = sigma**2 * rng.chisquare(PER_DAY - 1, size=(SIMS, DAYS))
    day_ss = within + day_sum**2 / PER_DAY
    return np.cumsum(day_sum, axis=1), np.cumsum(day_ss, axis=1)


def test_fixed_horizon_false_positive_rate_is_alpha() -> None:
    rng = np.random.default_rng(20240601)
    sums, squares = daily_normal_moments(rng)
    sums_b, squares_b = daily_normal_moments(rng)
    n = PER_DAY * DAYS
    p = np.array(
        [
            compare(
                Moments(n, sums[i, -1], squares[i, -1]), Moments(n, sums_b[i, -1], squares_b[i, -1])
            ).absolute.p_value
            for i in range(SIMS)
        ]
    )
    assert 0.03 <= np.mean(p < 0.05) <= 0.07
    successes = rng.binomial(n, 0.1, size=(SIMS, 2))
    p_rates = np.array(
        [
            compare(Moments.binomial(n, a), Moments.binomial(n, b)).absolute.p_value
            for a, b in successes.tolist()
        ]
    )
    assert 0.03 <= np.mean(p_rates < 0.05) <= 0.07


def test_sequential_test_keeps_false_positives_under_alpha_with_daily_peeking() -> None:
    rng = np.random.default_rng(7)
    sums, squares = daily_normal_moments(rng)
    sums_b, squares_b = daily_normal_moments(rng)
    seq_reject = np.zeros(SIMS, dtype=bool)
    naive_reject = np.zeros(SIMS, dtype=bool)
    for day in range(DAYS):
        n = PER_DAY * (day + 1)
        for i in range(SIMS):
            a = Moments(n, sums[i, day], squares[i, day])
            b = Moments(n, sums_b[i, day], squares_b[i, day])
            if not seq_reject[i]:
                seq_reject[i] = compare_sequential(a, b).absolute.p_value < 0.05
            if not naive_reject[i]:
                naive_reject[i] = compare(a, b).absolute.p_value < 0.05
    assert np.mean(seq_reject) <= 0.05
    # the same data read daily with the fixed-horizon test would have been wrong far more often
    assert np.mean(naive_reject) > 0.15
