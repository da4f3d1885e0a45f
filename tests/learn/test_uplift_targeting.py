"""Top-share targeting against a plain recomputation, a hand example and the closed-form
standard error of a difference of means."""

from __future__ import annotations

import numpy as np
import pytest

from surmesure.errors import InvalidInput
from surmesure.learn.uplift import targeting_value

# Eight people in score order (highest first): treated flag and outcome.
SCORE = [8, 7, 6, 5, 4, 3, 2, 1]
TREATED = [1, 0, 1, 0, 1, 0, 1, 0]
Y = [3.0, 1.0, 2.0, 0.0, 1.0, 1.0, 0.0, 2.0]


def test_hand_example() -> None:
    # top 25% = 2 people: treated mean 3, control mean 1 -> 2/8 * (2 * (3 - 1) - 0.5) = 0.875
    # top 50% = 4: treated (3+2)/2, control (1+0)/2 -> 4/8 * (2 * 2 - 0.5) = 1.75
    # everyone: treated 6/4, control 4/4 -> 1 * (2 * 0.5 - 0.5) = 0.5
    t = targeting_value(SCORE, Y, TREATED, value=2.0, cost=0.5, shares=(0.25, 0.5), rounds=50)
    assert [r.policy.estimate for r in t.rows] == pytest.approx([0.875 * 8, 1.75 * 8])
    assert t.everyone.estimate == pytest.approx(0.5 * 8)
    assert [r.random.estimate for r in t.rows] == pytest.approx([0.25 * 4, 0.5 * 4])
    assert t.rows[1].gain_over_random.estimate == pytest.approx(14 - 2)
    assert [r.people for r in t.rows] == [2, 4] and t.reason is None


def _plain(
    score: np.ndarray, y: np.ndarray, t: np.ndarray, share: float, v: float, c: float
) -> float:
    """The same definition, computed person by person without the module's cumulative sums."""
    n = len(score)
    k = round(share * n)
    ranked = sorted(range(n), key=lambda i: (-score[i], i))[:k]
    treated = [y[i] for i in ranked if t[i]]
    control = [y[i] for i in ranked if not t[i]]
    lift = sum(treated) / len(treated) - sum(control) / len(control)
    return k / n * (v * lift - c) * n


def test_matches_a_plain_recomputation_and_the_closed_form_interval() -> None:
    rng = np.random.default_rng(7)
    n = 4_000
    x = rng.normal(size=n)
    t = rng.integers(0, 2, n).astype(bool)
    y = rng.normal(0.2 * x * t + 1.0, 1.0)
    # ties in the score: ranks keep the input order
    score = np.round(x + rng.normal(0, 0.3, n), 1)
    result = targeting_value(score, y, t, value=3.0, cost=0.1, rounds=800, seed=1)
    for row in result.rows:
        assert row.policy.estimate == pytest.approx(_plain(score, y, t, row.share, 3.0, 0.1))
        assert row.policy.low < row.policy.estimate < row.policy.high
    # bootstrap interval of treating everyone against 1.96 x Welch's standard error
    se = np.sqrt(y[t].var(ddof=1) / t.sum() + y[~t].var(ddof=1) / (~t).sum()) * 3.0 * n
    width = result.everyone.high - result.everyone.low
    assert width == pytest.approx(2 * 1.96 * se, rel=0.1)
    # the score is informative: the top half beats a random half, interval above 0
    assert result.rows[-1].gain_over_random.low > 0


def test_a_random_score_gains_nothing_over_random_targeting() -> None:
    rng = np.random.default_rng(3)
    n = 6_000
    t = rng.integers(0, 2, n).astype(bool)
    y = rng.binomial(1, np.where(t, 0.12, 0.10)).astype(float)
    result = targeting_value(rng.random(n), y, t, rounds=400, seed=2)
    for row in result.rows:
        assert row.gain_over_random.low < 0 < row.gain_over_random.high


def test_empty_arm_in_the_top_gives_a_reason_and_bad_input_raises() -> None:
    result = targeting_value([3, 2, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0], shares=(0.5,), rounds=20)
    assert np.isnan(result.rows[0].policy.estimate) and result.reason
    with pytest.raises(InvalidInput, match="Shares"):
        targeting_value(SCORE, Y, TREATED, shares=(0.0,))
    with pytest.raises(InvalidInput, match="sizes"):
        targeting_value(SCORE[:3], Y, TREATED)
