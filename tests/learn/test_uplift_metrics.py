"""Qini and uplift curves against a hand-computed example and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from surmesure.errors import InvalidInput
from surmesure.learn.uplift import (
    auuc,
    perfect_score,
    qini_coefficient,
    qini_curve,
    score_uplift,
    uplift_curve,
)
from surmesure.learn.uplift.metrics import area

# Six people, already in score order; worked by hand in the comments below.
SCORE = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
TREATED = [1, 0, 1, 0, 1, 0]
Y = [1, 0, 1, 1, 0, 0]


def test_curves_match_the_hand_computed_example() -> None:
    q = qini_curve(Y, SCORE, TREATED)
    u = uplift_curve(Y, SCORE, TREATED)
    assert q.count.tolist() == [0, 1, 2, 3, 4, 5, 6]
    # k=5: 2 treated responders - 1 control responder x 3 treated / 2 control = 0.5
    assert q.gain.tolist() == pytest.approx([0, 1, 1, 2, 1, 0.5, 1])
    # k=5: (2/3 - 1/2) x 5
    assert u.gain.tolist() == pytest.approx([0, 1, 2, 3, 2, 5 / 6, 2])


def test_qini_coefficient_and_auuc_of_the_hand_computed_example() -> None:
    # Qini area 6 - random 3 = 3. Perfect ranking (scores 1,0,1,-1,0,0, ties together) passes
    # through (2, 2), (5, 2), (6, 1): area 9.5 - 3 = 6.5.
    assert qini_coefficient(Y, SCORE, TREATED) == pytest.approx(3 / 6.5, abs=1e-12)
    under, gain = auuc(Y, SCORE, TREATED)
    assert under == pytest.approx(59 / 216, abs=1e-12)
    assert gain == pytest.approx(23 / 216, abs=1e-12)
    scores = score_uplift(Y, SCORE, TREATED)
    assert (scores.qini_coefficient, scores.auuc, scores.n) == pytest.approx((6 / 13, 59 / 216, 6))


def test_reversed_ranking_and_constant_score() -> None:
    reversed_score = -np.asarray(SCORE)
    assert qini_coefficient(Y, reversed_score, TREATED) < 0
    assert qini_coefficient(Y, np.zeros(6), TREATED) == pytest.approx(0.0, abs=1e-12)
    assert qini_coefficient(Y, perfect_score(Y, TREATED), TREATED) == pytest.approx(1.0)


def known_uplift(n: int, share: float, effect: float, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    treated = rng.permutation(np.arange(n) < n // 2).astype(int)
    tau = np.where(rng.random(n) < share, effect, 0.0)
    y = 1.0 + rng.normal(0.0, 0.5, n) + treated * tau
    return y, treated, tau


def test_ranking_by_the_true_uplift_reaches_the_closed_form_maximum() -> None:
    n, share, effect = 100_000, 0.3, 0.5
    y, treated, tau = known_uplift(n, share, effect, seed=7)
    # Expected Qini curve of a ranking is (treated share) x (cumulative true uplift); ranking by
    # the truth maximizes it at every depth. With a fraction p at effect d and half treated, the
    # area above random is n^2 d p (1 - p) / 4.
    p = float((tau > 0).mean())
    expected = n * n * effect * p * (1 - p) / 4
    oracle = area(qini_curve(y, tau, treated))
    assert oracle == pytest.approx(expected, rel=0.05)
    rng = np.random.default_rng(1)
    noisy = area(qini_curve(y, tau + rng.normal(0, 0.5, n), treated))
    assert noisy < oracle


def test_random_scores_give_a_qini_coefficient_near_zero() -> None:
    coefs, oracle = [], []
    for seed in range(40):
        y, treated, tau = known_uplift(2_000, 0.3, 0.5, seed)
        score = np.random.default_rng(seed + 1000).random(y.size)
        coefs.append(qini_coefficient(y, score, treated))
        oracle.append(qini_coefficient(y, tau, treated))
    mean, se = float(np.mean(coefs)), float(np.std(coefs, ddof=1) / np.sqrt(len(coefs)))
    assert abs(mean) < 3 * se
    assert float(np.mean(oracle)) > mean + 10 * se


def test_bad_inputs_raise_or_carry_a_reason() -> None:
    with pytest.raises(InvalidInput):
        qini_curve([1, 0], [0.1], [1, 0])
    with pytest.raises(InvalidInput):
        qini_curve([1, 0], [0.1, 0.2], [2, 0])
    lonely = score_uplift([1, 0], [0.1, 0.2], [1, 1])
    assert lonely.reason is not None and np.isnan(lonely.qini_coefficient)
    flat = score_uplift([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0])
    assert flat.reason is not None and np.isnan(flat.qini_coefficient)
