"""Meta-learners on synthetic experiments with a known per-person effect, and the policy."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from surmesure.errors import InvalidInput
from surmesure.learn.uplift import (
    XLearner,
    make_learner,
    policy_profit,
    qini_coefficient,
    treat,
)
from surmesure.learn.uplift.learners import effect_model, outcome_model

Array = npt.NDArray[np.float64]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The models' OpenMP threads would only fight over a shared machine's cores."""
    with threadpool_limits(1):
        yield


def experiment(n: int, seed: int, binary: bool = False) -> tuple[Array, Array, Array, Array]:
    """Randomized 50/50 test; the true effect depends on two of five features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    treated = rng.integers(0, 2, n)
    if binary:
        base = 1 / (1 + np.exp(-(-1.0 + 0.5 * x[:, 2])))
        tau = 0.15 * (1 + np.tanh(x[:, 0])) * (x[:, 1] > -0.5)
        y = (rng.random(n) < base + treated * tau * (1 - base)).astype(float)
        return x, y, treated.astype(float), tau * (1 - base)
    tau = 1.0 + np.tanh(x[:, 0]) + 0.5 * (x[:, 1] > 0)
    y = x[:, 2] + 0.5 * x[:, 3] ** 2 + treated * tau + rng.normal(size=n)
    return x, y, treated.astype(float), tau


@pytest.mark.parametrize("name", ["t", "x", "dr"])
def test_learners_recover_the_per_person_uplift(name: str) -> None:
    x, y, t, _ = experiment(6_000, seed=1)
    x_new, y_new, t_new, tau_new = experiment(3_000, seed=2)
    uplift = make_learner(name, binary=False, random_state=0).fit(x, y, t).predict(x_new)
    assert np.corrcoef(uplift, tau_new)[0, 1] > 0.8
    ours = qini_coefficient(y_new, uplift, t_new)
    randoms = [
        qini_coefficient(y_new, np.random.default_rng(s).random(y_new.size), t_new)
        for s in range(20)
    ]
    assert ours > max(randoms)
    assert ours > 0.8 * qini_coefficient(y_new, tau_new, t_new)


def test_x_learner_with_an_estimated_propensity_on_an_unbalanced_split() -> None:
    x, y, t, _ = experiment(6_000, seed=6)
    keep = (t == 0) | (np.random.default_rng(6).random(t.size) < 0.3)
    x_new, _, _, tau_new = experiment(3_000, seed=7)
    learner = XLearner(outcome_model(False), propensity=LogisticRegression())
    uplift = learner.fit(x[keep], y[keep], t[keep]).predict(x_new)
    assert np.corrcoef(uplift, tau_new)[0, 1] > 0.8
    assert learner.share_ == pytest.approx(0.3 / 1.3, abs=0.03)


def test_x_learner_on_a_binary_outcome_predicts_probability_points() -> None:
    x, y, t, _ = experiment(16_000, seed=3, binary=True)
    x_new, _, _, tau_new = experiment(3_000, seed=4, binary=True)
    uplift = make_learner("x", binary=True).fit(x, y, t).predict(x_new)
    assert np.corrcoef(uplift, tau_new)[0, 1] > 0.8
    assert float(uplift.mean()) == pytest.approx(float(tau_new.mean()), abs=0.02)


def test_the_default_effect_model_is_additive() -> None:
    """Fitted to a pure interaction plus main effects, the effect model keeps only a sum of
    per-feature functions: the interaction contrast of any two people pairs is zero."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(4_000, 3))
    y = x[:, 0] + (x[:, 1] > 0) + 2.0 * x[:, 0] * x[:, 1] + rng.normal(size=4_000)
    model = effect_model(x.shape[0]).fit(x, y)
    corners = np.array([[a, b, 0.0] for a in (-1.0, 1.0) for b in (-1.0, 1.0)])
    f = model.predict(corners)
    assert f[3] - f[2] - f[1] + f[0] == pytest.approx(0.0, abs=1e-9)
    # ...while each feature's own effect is learned.
    assert f[2] - f[0] > 0.5 and f[1] - f[0] > 0.2


def test_policy_profit_matches_the_simulated_truth() -> None:
    _, y, t, tau = experiment(200_000, seed=5)
    value, cost = 2.0, 2.0
    report = policy_profit(tau, y, t, value=value, cost=cost)
    truth_policy = float(np.maximum(value * tau - cost, 0).sum())
    truth_all = float((value * tau - cost).sum())
    assert report.targeted_share == pytest.approx(float((value * tau > cost).mean()))
    assert report.policy == pytest.approx(truth_policy, abs=4 * report.std_error)
    yt, yc = y[t == 1], y[t == 0]
    se_all = y.size * value * np.sqrt(yt.var() / yt.size + yc.var() / yc.size)
    assert report.treat_all == pytest.approx(truth_all, abs=4 * se_all)
    assert report.policy > report.treat_all
    assert report.treat_none == 0.0


def test_policy_profit_by_hand_and_edge_cases() -> None:
    uplift = np.array([0.5, 0.4, 0.3, 0.2, -0.1, -0.2])
    y = np.array([3.0, 1.0, 2.0, 1.0, 5.0, 1.0])
    t = np.array([1, 0, 1, 0, 1, 0])
    report = policy_profit(uplift, y, t, value=10.0, cost=1.5, population=60)
    # Targets the first four: (2.5 - 1) x 10 - 1.5 = 13.5 per targeted person, 4/6 of 60 people.
    assert report.policy == pytest.approx(13.5 * 40)
    # Everyone: ((10/3 - 1) x 10 - 1.5) x 60.
    assert report.treat_all == pytest.approx((70 / 3 - 1.5) * 60)
    assert treat(uplift, 10.0, 1.5).tolist() == [True] * 4 + [False] * 2
    nobody = policy_profit(uplift, y, t, value=10.0, cost=100.0)
    assert (nobody.policy, nobody.targeted_share, nobody.reason) == (0.0, 0.0, None)
    with pytest.raises(InvalidInput):
        policy_profit(uplift, y, t, cost=-1.0)


def test_learner_input_errors() -> None:
    with pytest.raises(InvalidInput):
        make_learner("z", binary=False)
    with pytest.raises(InvalidInput):
        make_learner("t", binary=False).fit(np.zeros((4, 2)), np.zeros(4), np.ones(4))
