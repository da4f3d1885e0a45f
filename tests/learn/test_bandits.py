"""Thompson sampling: the sampler's contract, and regret in a seeded, vectorized simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from surmesure.errors import InvalidInput
from surmesure.learn.bandits import ThompsonSampler, thompson_choices
from surmesure.learn.plots import regret_plot

RATES = np.array([0.04, 0.06])
ROUNDS, RUNS = 10_000, 100


def simulate(seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-round expected regret (runs x rounds) of Thompson sampling and of a 50/50 split."""
    rng = np.random.default_rng(seed)
    alpha, beta = np.ones((RUNS, 2)), np.ones((RUNS, 2))
    rows = np.arange(RUNS)
    thompson = np.empty((RUNS, ROUNDS))
    split = np.empty((RUNS, ROUNDS))
    best = RATES.max()
    for r in range(ROUNDS):
        arm = thompson_choices(alpha, beta, rng)
        won = rng.random(RUNS) < RATES[arm]
        alpha[rows, arm] += won
        beta[rows, arm] += ~won
        thompson[:, r] = best - RATES[arm]
        split[:, r] = best - RATES[rng.integers(0, 2, RUNS)]
    return thompson, split


@pytest.fixture(scope="module")
def regrets() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    return simulate(seed=2024)


def test_regret_grows_sub_linearly_and_beats_a_fixed_split(regrets) -> None:  # type: ignore[no-untyped-def]
    thompson, split = regrets
    first = thompson[:, : ROUNDS // 2].sum(axis=1).mean()
    second = thompson[:, ROUNDS // 2 :].sum(axis=1).mean()
    assert second < first
    total, fixed = thompson.sum(axis=1).mean(), split.sum(axis=1).mean()
    # A 50/50 split loses half a round's gap every round: 0.5 x 0.02 x 10,000 = 100.
    assert fixed == pytest.approx(100, rel=0.02)
    assert total < 0.2 * fixed


def test_regret_plot_is_a_non_empty_png(regrets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    thompson, split = regrets
    path = regret_plot({"Thompson sampling": thompson, "50/50 split": split}, tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    with pytest.raises(InvalidInput):
        regret_plot({"x": thompson[0]}, tmp_path / "r.jpg")


def test_sampler_converges_to_the_better_arm_and_round_trips_json() -> None:
    rng = np.random.default_rng(11)
    sampler = ThompsonSampler(("blue", "green"))
    shown = {"blue": 0, "green": 0}
    for _ in range(4_000):
        arm = sampler.choose(rng)
        shown[arm] += 1
        sampler.update(arm, bool(rng.random() < {"blue": 0.05, "green": 0.15}[arm]))
    assert shown["green"] > 0.8 * sum(shown.values())
    means = sampler.means()
    assert means["green"] == pytest.approx(0.15, abs=0.03)
    restored = ThompsonSampler.from_dict(json.loads(json.dumps(sampler.to_dict())))
    assert restored == sampler
    assert restored.choose(np.random.default_rng(5)) == sampler.choose(np.random.default_rng(5))


def test_choice_frequency_equals_the_posterior_probability_of_being_best() -> None:
    # P(Beta(3, 1) > Beta(1, 1)) = E[X^1] for X ~ Beta(3, 1) = 3 / 4.
    rng = np.random.default_rng(3)
    picks = thompson_choices(np.tile([1.0, 3.0], (40_000, 1)), np.ones((40_000, 2)), rng)
    assert picks.mean() == pytest.approx(0.75, abs=0.01)


def test_batched_counts_equal_one_by_one_updates_and_errors() -> None:
    one, batch = ThompsonSampler(("a", "b")), ThompsonSampler(("a", "b"))
    for reward in (1, 0, 0, 1, 1):
        one.update("a", reward)
    batch.update_counts("a", 3, 5)
    assert (
        one.to_dict()
        == batch.to_dict()
        == {"arms": {"a": {"alpha": 4.0, "beta": 3.0}, "b": {"alpha": 1.0, "beta": 1.0}}}
    )
    with pytest.raises(InvalidInput):
        one.update("c", 1)
    with pytest.raises(InvalidInput):
        one.update("a", 2)
    with pytest.raises(InvalidInput):
        ThompsonSampler(("a", "a"))
    with pytest.raises(InvalidInput):
        ThompsonSampler.from_dict({"arms": {"a": {"alpha": 1.0}}})
    with pytest.raises(InvalidInput):
        ThompsonSampler(("a",), [0.0], [1.0])
