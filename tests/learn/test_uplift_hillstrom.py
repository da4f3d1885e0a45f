"""Uplift on Hillstrom (Womens E-Mail vs No E-Mail, visit and spend), out of sample, and its
CLI."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import typer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from conftest import dataset
from surmesure.cli import uplift
from surmesure.learn.uplift import TLearner, fit_and_evaluate, qini_coefficient, stratified_split
from surmesure.learn.uplift.data import UpliftData, read_uplift_data

pytestmark = pytest.mark.realdata
FEATURES = ["recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie"]
FEATURES += ["channel"]
ARGS = ["--treatment-column", "segment", "--treatment", "Womens E-Mail", "--control", "No E-Mail"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The models' OpenMP threads would only fight over a shared machine's cores."""
    with threadpool_limits(1):
        yield


@functools.cache
def _read(path: Path, outcome: str) -> UpliftData:
    return read_uplift_data(path, "segment", "Womens E-Mail", "No E-Mail", outcome, FEATURES)


def womens(outcome: str) -> UpliftData:
    return _read(dataset("hillstrom/hillstrom.csv"), outcome)


def test_reads_the_two_arms_and_encodes_text_columns() -> None:
    data = womens("visit")
    assert data.x.shape == (21_387 + 21_306, len(data.feature_names))
    assert int(data.treated.sum()) == 21_387 and data.binary
    assert "channel=Web" in data.feature_names and "zip_code=Rural" in data.feature_names
    assert data.y[data.treated == 1].mean() == pytest.approx(0.1514, abs=5e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_x_learner_ranks_above_random_and_gates_everyone_at_zero_cost(seed: int) -> None:
    data = womens("visit")
    report = fit_and_evaluate(data.x, data.y, data.treated, "x", value=1.0, cost=0.0, seed=seed)
    assert report.n_test == pytest.approx(data.y.size / 2, abs=1)
    assert report.scores.qini_coefficient > 0
    assert report.scores.auuc_gain > 0
    # An e-mail raises the visit chance of every kind of customer here: at cost 0 the gate
    # sends to all, so its profit is exactly that of sending to all.
    assert report.profit.targeted_share == 1.0
    assert report.profit.policy == report.profit.treat_all
    held_out = stratified_split(data.treated, 0.5, seed).test
    t, y = data.treated[held_out] == 1, data.y[held_out]
    assert t.mean() == pytest.approx(data.treated.mean(), abs=1e-4)
    ate = y[t].mean() - y[~t].mean()
    assert report.profit.treat_all == pytest.approx(ate * data.y.size, rel=1e-12)


def test_spend_outcome_at_a_cost_targets_fewer_people() -> None:
    data = womens("spend")
    report = fit_and_evaluate(data.x, data.y, data.treated, "t", value=1.0, cost=0.5, seed=0)
    assert not data.binary
    assert 0.0 < report.profit.targeted_share < 1.0
    assert report.profit.targeted_share == pytest.approx(float((report.uplift > 0.5).mean()))


def test_x_learner_ranks_spend_above_a_linear_two_model_baseline() -> None:
    """Spend is zero for 99% of people and heavy-tailed for the rest, so one split's Qini is noisy:
    over five splits the default X-learner ranks above random on each and, on average, above two
    linear regressions (the best scikit-learn baseline of the benchmark)."""
    data = womens("spend")
    ours, linear = [], []
    for seed in range(5):
        report = fit_and_evaluate(data.x, data.y, data.treated, "x", seed=seed)
        ours.append(report.scores.qini_coefficient)
        split = stratified_split(data.treated, 0.5, seed)
        x, y, t = data.x[split.train], data.y[split.train], data.treated[split.train]
        baseline = TLearner(make_pipeline(StandardScaler(), LinearRegression())).fit(x, y, t)
        uplift = baseline.predict(data.x[split.test])
        linear.append(qini_coefficient(data.y[split.test], uplift, data.treated[split.test]))
    assert min(ours) > 0
    assert sum(ours) / 5 > sum(linear) / 5


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test shell."""

    uplift.register(app)
    return app


def test_cli_prints_json_and_writes_the_qini_plot(tmp_path: Path) -> None:
    plot = tmp_path / "qini.png"
    path = str(dataset("hillstrom/hillstrom.csv"))
    args = ["uplift", "fit", path, *ARGS, "--outcome", "visit", "--features", ",".join(FEATURES)]
    result = CliRunner().invoke(
        make_app(), [*args, "--value", "5", "--cost", "0.1", "--plot", str(plot), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)
    assert out["qini_coefficient"] > 0 and out["features"] == FEATURES
    assert out["n_train"] + out["n_test"] == 42_693
    policy = out["policy"]
    assert policy["population"] == 42_693 and policy["cost"] == 0.1
    assert 0 < policy["targeted_share"] <= 1 and policy["profit_treat_none"] == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    table = CliRunner().invoke(make_app(), args)
    assert table.exit_code == 0 and "treat everyone" in table.stdout


def test_cli_names_a_missing_column_and_a_missing_arm() -> None:
    path = str(dataset("hillstrom/hillstrom.csv"))
    result = CliRunner().invoke(make_app(), ["uplift", "fit", path, *ARGS, "--outcome", "revenue"])
    assert result.exit_code == 2 and "revenue" in result.output and "spend" in result.output
    wrong = [a.replace("Womens E-Mail", "Kids E-Mail") for a in ARGS]
    result = CliRunner().invoke(make_app(), ["uplift", "fit", path, *wrong, "--outcome", "visit"])
    assert result.exit_code == 2 and "Kids E-Mail" in result.output
