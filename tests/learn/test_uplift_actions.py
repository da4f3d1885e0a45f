"""Next best action: the choice rule, its explanation, the inverse-propensity value of a policy
against differences of means and simulated truth, and on Hillstrom's three arms out of sample."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import pytest
import typer
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from conftest import dataset
from surmesure.cli import uplift
from surmesure.errors import InvalidInput
from surmesure.learn.uplift import Action, next_best_action, policy_value
from surmesure.learn.uplift.action_report import fit_actions
from surmesure.learn.uplift.data import read_arms_data

OFFERS = [Action("email", 10.0, 0.5), Action("coupon", 10.0, 2.0)]


def test_the_highest_expected_value_wins_and_nothing_below_zero() -> None:
    uplift = np.array(
        [
            [0.10, 0.30],  # email 0.5, coupon 1.0 -> coupon
            [0.10, 0.20],  # email 0.5, coupon 0.0 -> email
            [0.04, 0.10],  # email -0.1, coupon -1.0 -> nothing
            [0.05, 0.25],  # email 0.0, coupon 0.5 -> coupon
            [0.05, 0.15],  # email 0.0, coupon -0.5 -> nothing (0 does not beat nothing)
            [0.20, 0.35],  # email 1.5, coupon 1.5 -> email (listed first)
        ]
    )
    choice = next_best_action(uplift, OFFERS)
    assert [choice.name(i) for i in range(6)] == [
        "coupon",
        "email",
        "do nothing",
        "coupon",
        "do nothing",
        "email",
    ]
    assert choice.expected[0].tolist() == pytest.approx([0.5, 1.0])
    text = choice.explain(0, uplift, "EUR")
    assert text.startswith("coupon (coupon: uplift +0.3000 x 10 EUR - 2 EUR = +1.0000 EUR;")
    assert text.index("email:") < text.index("do nothing: 0 EUR")


def test_bad_actions_raise() -> None:
    with pytest.raises(InvalidInput, match="distinct"):
        next_best_action(np.zeros((1, 2)), [Action("a", 1, 0), Action("a", 1, 0)])
    with pytest.raises(InvalidInput, match="cost"):
        next_best_action(np.zeros((1, 1)), [Action("a", 1, -1)])
    with pytest.raises(InvalidInput, match="shape"):
        next_best_action(np.zeros((1, 3)), OFFERS)


def _experiment(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arms -1/0/1 at random (shares 0.4/0.3/0.3); outcome probabilities known per arm."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    arm = rng.choice([-1, 0, 1], size=n, p=[0.4, 0.3, 0.3])
    # per person: P(y) under nothing, email, coupon; email helps low x, coupon high x
    p = np.column_stack([0.1 + 0 * x, 0.1 + 0.1 * (x < 0.5), 0.1 + 0.25 * (x > 0.7)])
    y = rng.binomial(1, p[np.arange(n), arm + 1]).astype(float)
    return x, arm, y, p


def test_giving_one_action_to_everyone_is_the_difference_of_means() -> None:
    x, arm, y, _ = _experiment(5_000, 0)
    got = policy_value(np.zeros(x.size, dtype=int), y, arm, OFFERS, rounds=50)
    direct = 10.0 * (y[arm == 0].mean() - y[arm == -1].mean()) - 0.5
    assert got.estimate == pytest.approx(direct * x.size, rel=1e-9)
    assert policy_value(np.full(x.size, -1), y, arm, OFFERS, rounds=50).estimate == 0.0


def test_the_estimate_and_interval_agree_with_the_simulated_truth() -> None:
    x, arm, y, p = _experiment(20_000, 1)
    chosen = np.where(x < 0.5, 0, np.where(x > 0.7, 1, -1))
    got = policy_value(chosen, y, arm, OFFERS, population=1, rounds=400, seed=3)
    # truth from the known probabilities of each person's chosen action and of nothing
    rows = np.arange(x.size)
    costs = np.array([0.0, 0.5, 2.0])
    truth = (10.0 * (p[rows, chosen + 1] - p[:, 0]) - costs[chosen + 1]).mean()
    assert truth == pytest.approx(0.5 * 0.8, abs=0.01)
    assert got.low < truth < got.high
    assert got.high - got.low < 0.25
    wrong = np.where(x < 0.5, 1, 0)  # coupon where it does nothing, email where it does nothing
    assert policy_value(wrong, y, arm, OFFERS, population=1, rounds=200).high < got.low


@pytest.fixture
def one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


FEATURES = ["recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie"]
FEATURES += ["channel"]
ARMS = ["Mens E-Mail", "Womens E-Mail"]


@pytest.mark.realdata
@pytest.mark.usefixtures("one_thread")
def test_hillstrom_next_best_action_and_top_share_targeting() -> None:
    path = dataset("hillstrom/hillstrom.csv")
    data = read_arms_data(path, "segment", ARMS, "No E-Mail", "visit", FEATURES)
    assert data.y.size == 64_000 and (data.arm == -1).sum() == 21_306
    actions = [Action(a, 1.0, 0.05) for a in ARMS]
    report = fit_actions(data, actions, "x", seed=0, rounds=200)
    best_single = max(i.estimate for i in report.everyone.values())
    assert report.policy.estimate >= best_single - 1e-9
    assert report.policy.low > 0
    assert sum(report.shares.values()) == pytest.approx(1.0)


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test shell."""

    uplift.register(app)
    return app


@pytest.mark.realdata
@pytest.mark.usefixtures("one_thread")
def test_cli_prints_targeting_by_share_and_the_next_best_action() -> None:
    path = str(dataset("hillstrom/hillstrom.csv"))
    common = ["--treatment-column", "segment", "--control", "No E-Mail", "--outcome", "visit"]
    common += ["--features", ",".join(FEATURES), "--cost", "0.05", "--json"]
    fit = CliRunner().invoke(
        _app(), ["uplift", "fit", path, "--treatment", "Womens E-Mail", *common]
    )
    assert fit.exit_code == 0, fit.output
    targeting = orjson.loads(fit.stdout)["targeting"]
    assert [r["share"] for r in targeting["top"]] == [0.1, 0.2, 0.5]
    top20 = targeting["top"][1]
    # the X-learner's top 20% on visits at 0.05 a mail beats a random 20% on held-out people
    assert top20["gain_over_random"]["low"] > 0
    assert top20["policy"]["estimate"] > targeting["everyone"]["estimate"]
    result = CliRunner().invoke(
        _app(), ["uplift", "actions", path, "--arms", ",".join(ARMS), *common, "--examples", "2"]
    )
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)
    assert set(out["shares"]) == {*ARMS, "do nothing"}
    assert len(out["examples"]) == 2 and "uplift" in out["examples"][0]["explanation"]
    bad = CliRunner().invoke(
        _app(), ["uplift", "actions", path, "--arms", ",".join(ARMS), *common, "--value", "1,2,3"]
    )
    assert bad.exit_code == 2 and "--value gives 3 numbers for 2 arms" in bad.output
