"""Beta-Binomial against a closed form and Monte Carlo; the normal model's risks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from surmesure.learn import Moments, beta_binomial, effect_posterior
from surmesure.learn.bayesian import normal_losses


def chance_b_beats_a(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    """Evan Miller's exact P(B > A) for integer Beta parameters."""
    i = np.arange(a_b)
    terms = (
        special.betaln(a_a + i, b_a + b_b)
        - np.log(b_b + i)
        - special.betaln(1 + i, b_b)
        - special.betaln(a_a, b_a)
    )
    return float(np.exp(special.logsumexp(terms)))


@pytest.mark.parametrize(
    ("sa", "na", "sb", "nb"),
    [(2262, 21306, 3894, 21307), (9, 120, 17, 130), (3, 40, 1, 45), (0, 10, 0, 12)],
)
def test_chance_to_beat_matches_the_closed_form(sa: int, na: int, sb: int, nb: int) -> None:
    result = beta_binomial(sa, na, sb, nb)
    expected = chance_b_beats_a(1 + sa, 1 + na - sa, 1 + sb, 1 + nb - sb)
    assert result.chance_to_beat == pytest.approx(expected, abs=1e-9)


def test_loss_and_interval_match_monte_carlo() -> None:
    rng = np.random.default_rng(5)
    draws = 2_000_000
    a = rng.beta(1 + 9, 1 + 111, draws)
    b = rng.beta(1 + 17, 1 + 113, draws)
    result = beta_binomial(9, 120, 17, 130)
    loss_b = np.maximum(a - b, 0)
    assert result.expected_loss_treatment == pytest.approx(
        loss_b.mean(), abs=4 * loss_b.std() / np.sqrt(draws)
    )
    loss_a = np.maximum(b - a, 0)
    assert result.expected_loss_control == pytest.approx(
        loss_a.mean(), abs=4 * loss_a.std() / np.sqrt(draws)
    )
    low, high = np.quantile(b - a, [0.025, 0.975])
    assert result.difference.lower == pytest.approx(low, abs=1e-3)
    assert result.difference.upper == pytest.approx(high, abs=1e-3)
    assert result.control_rate.lower == pytest.approx(stats.beta(10, 112).ppf(0.025), abs=1e-12)


def test_normal_losses_match_numerical_integration() -> None:
    mu, sigma = -0.3, 1.7
    gain = stats.norm(mu, sigma).expect(lambda d: max(d, 0.0))
    loss = stats.norm(mu, sigma).expect(lambda d: max(-d, 0.0))
    assert normal_losses(mu, sigma) == pytest.approx((gain, loss), abs=1e-9)


def test_normal_model_on_revenue_is_the_welch_posterior() -> None:
    rng = np.random.default_rng(9)
    control = Moments.of(rng.exponential(10.0, 4000))
    treatment = Moments.of(rng.exponential(10.6, 4000))
    post = effect_posterior(control, treatment, scale="absolute")
    se = np.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    diff = treatment.mean - control.mean
    assert post.chance_to_win == pytest.approx(stats.norm.cdf(diff / se), abs=1e-12)
    assert post.ci_lower == pytest.approx(diff - 1.959963984540054 * se, abs=1e-12)
    inverse = effect_posterior(control, treatment, scale="absolute", inverse=True)
    assert inverse.chance_to_win == pytest.approx(1 - post.chance_to_win, abs=1e-12)
