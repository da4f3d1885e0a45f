"""Fieller's interval of the relative lift: its bounds solve the defining equation computed
from the raw values, it excludes 0 exactly when the test of the difference rejects, and it
covers the true relative lift at its nominal rate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from conftest import invoke, invoke_json
from surmesure.learn import Moments, compare
from surmesure.learn.frequentist import UNBOUNDED


def fieller_by_roots(treat: np.ndarray, ctrl: np.ndarray, alpha: float) -> tuple[float, float]:
    """Roots of (m_t - (1 + r) m_c)² = q² (v_t + (1 + r)² v_c), found numerically around the
    point estimate, with Welch's degrees of freedom from scipy."""
    welch = stats.ttest_ind(treat, ctrl, equal_var=False)
    q = stats.t.ppf(1 - alpha / 2, welch.df)
    m_t, m_c = treat.mean(), ctrl.mean()
    v_t, v_c = treat.var(ddof=1) / treat.size, ctrl.var(ddof=1) / ctrl.size

    def g(r: float) -> float:
        return float((m_t - (1 + r) * m_c) ** 2 - q * q * (v_t + (1 + r) ** 2 * v_c))

    estimate = m_t / m_c - 1
    low = optimize.brentq(g, estimate - 100, estimate, xtol=1e-14)
    high = optimize.brentq(g, estimate, estimate + 100, xtol=1e-14)
    return low, high


@pytest.mark.parametrize("seed", range(6))
def test_bounds_match_the_roots_of_the_defining_equation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ctrl = rng.gamma(0.5, 4.0, 300 + 50 * seed)
    treat = rng.gamma(0.5, 5.0, 280 + 40 * seed)
    result = compare(Moments.of(ctrl), Moments.of(treat))
    fieller = result.relative_fieller
    assert fieller is not None and fieller.reason is None
    low, high = fieller_by_roots(treat, ctrl, 0.05)
    assert fieller.ci_lower == pytest.approx(low, abs=1e-9)
    assert fieller.ci_upper == pytest.approx(high, abs=1e-9)
    assert fieller.estimate == pytest.approx(treat.mean() / ctrl.mean() - 1, abs=1e-12)
    assert fieller.p_value == result.absolute.p_value


def test_with_cuped_the_bounds_solve_the_equation_on_the_adjusted_values() -> None:
    rng = np.random.default_rng(11)
    pre_c, pre_t = rng.gamma(1.0, 10.0, 400), rng.gamma(1.0, 10.0, 420)
    ctrl = 0.6 * pre_c + rng.gamma(1.0, 4.0, 400)
    treat = 0.6 * pre_t + rng.gamma(1.0, 5.0, 420)
    result = compare(Moments.of(ctrl, pre_c), Moments.of(treat, pre_t))
    fieller = result.relative_fieller
    assert fieller is not None and fieller.reason is None and result.theta != 0
    theta, q = result.theta, stats.t.ppf(0.975, result.dof)
    for r in (fieller.ci_lower, fieller.ci_upper):
        # D - r M, person by person: treatment's adjusted value, control's (1 + r) y - θ x
        t_part, c_part = treat - theta * pre_t, (1 + r) * ctrl - theta * pre_c
        gap = t_part.mean() - c_part.mean()
        var = t_part.var(ddof=1) / t_part.size + c_part.var(ddof=1) / c_part.size
        assert gap * gap == pytest.approx(q * q * var, rel=1e-9)


def test_the_interval_excludes_zero_exactly_when_the_test_rejects() -> None:
    """Noisy, small control means (where the delta method disagrees) and ordinary ones."""
    rng = np.random.default_rng(5)
    disagreements = 0
    for _ in range(400):
        n_c, n_t = int(rng.integers(20, 400)), int(rng.integers(20, 400))
        ctrl = rng.exponential(1.0, n_c) * rng.binomial(1, rng.uniform(0.02, 0.5), n_c)
        treat = rng.exponential(rng.uniform(0.5, 4.0), n_t) * rng.binomial(1, 0.3, n_t)
        result = compare(Moments.of(ctrl), Moments.of(treat), alpha=0.05)
        fieller = result.relative_fieller
        if result.absolute.reason is not None or fieller is None:
            continue
        rejects = result.absolute.p_value < 0.05
        assert (fieller.ci_lower > 0 or fieller.ci_upper < 0) == rejects
        delta = result.relative
        disagreements += (delta.ci_lower > 0 or delta.ci_upper < 0) != rejects
    assert disagreements > 0  # the cases include ones where the delta method disagrees


def test_proportions_use_the_normal_critical_value() -> None:
    ctrl, treat = Moments.binomial(4000, 120), Moments.binomial(4100, 170)
    result = compare(ctrl, treat)
    fieller = result.relative_fieller
    assert fieller is not None
    q = stats.norm.ppf(0.975)
    m_c, m_t = 120 / 4000, 170 / 4100
    v_c, v_t = m_c * (1 - m_c) / 4000, m_t * (1 - m_t) / 4100
    for r in (fieller.ci_lower, fieller.ci_upper):
        assert (m_t - (1 + r) * m_c) ** 2 == pytest.approx(q * q * (v_t + (1 + r) ** 2 * v_c))


def test_an_uncertain_control_mean_gives_an_open_ended_interval() -> None:
    """A control mean not distinguishable from 0: the whole line when the difference is not
    significant, the ray away from 0 holding the estimate when it is."""
    ctrl = np.array([0.0] * 28 + [0.1, 9.0])
    flat = compare(Moments.of(ctrl), Moments.of(np.array([0.0] * 28 + [0.2, 8.0]))).relative_fieller
    assert flat is not None and flat.reason == UNBOUNDED
    assert (flat.ci_lower, flat.ci_upper) == (-math.inf, math.inf)
    treat = np.array([0.0] * 10 + [3.0] * 20)
    result = compare(Moments.of(ctrl), Moments.of(treat))
    ray = result.relative_fieller
    assert ray is not None and ray.reason == UNBOUNDED and result.reason == UNBOUNDED
    assert result.absolute.p_value < 0.05
    assert 0 < ray.ci_lower < ray.estimate and ray.ci_upper == math.inf
    welch = stats.ttest_ind(treat, ctrl, equal_var=False)
    q = stats.t.ppf(0.975, welch.df)
    r = ray.ci_lower
    v_t, v_c = treat.var(ddof=1) / treat.size, ctrl.var(ddof=1) / ctrl.size
    gap = treat.mean() - (1 + r) * ctrl.mean()
    assert gap * gap == pytest.approx(q * q * (v_t + (1 + r) ** 2 * v_c), rel=1e-9)


def test_coverage_of_the_true_relative_lift() -> None:
    """95% intervals cover the true lift (+25% on a skewed metric) in 95% +- 1.5% of 2,000
    simulated experiments of 200 people per arm."""
    rng = np.random.default_rng(2026)
    covered = 0
    runs = 2_000
    for _ in range(runs):
        ctrl = rng.gamma(0.8, 2.5, 200)
        treat = rng.gamma(0.8, 2.5 * 1.25, 200)
        fieller = compare(Moments.of(ctrl), Moments.of(treat)).relative_fieller
        assert fieller is not None
        covered += fieller.ci_lower <= 0.25 <= fieller.ci_upper
    assert abs(covered / runs - 0.95) < 0.015


def sparse_spend_file(tmp_path: Path) -> Path:
    """Three channels of a past e-mail test where few people buy (as in Hillstrom's): the
    control mean rests on a few dozen buyers, so the delta method is wide."""
    rng = np.random.default_rng(0)
    rows = ["channel,variant,spend"]
    for channel in ("web", "phone", "shop"):
        for variant, rate in (("control", 0.006), ("email", 0.015)):
            spend = rng.binomial(1, rate, 2600) * rng.lognormal(4.3, 0.8, 2600)
            rows += [f"{channel},{variant},{s:.2f}" for s in spend]
    path = tmp_path / "test.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_analyze_by_channel_shows_intervals_that_agree_with_p(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sparse_spend_file(tmp_path)
    args = ("experiment", "analyze", str(path), "--variant-column", "variant")
    args += ("--control", "control", "--metric", "spend", "--by", "channel")
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    out = invoke_json(monkeypatch, url, *args)
    rows = [
        v["comparison"]
        for result in (out, *out["breakdown"]["segments"])
        for v in result["variants"]
        if v["comparison"] is not None
    ]
    assert len(rows) == 4
    delta_disagrees = 0
    for c in rows:
        rejects = c["absolute"]["p_value"] < 0.05
        fieller, delta = c["relative_fieller"], c["relative"]
        assert (fieller["ci_lower"] > 0 or fieller["ci_upper"] < 0) == rejects
        delta_disagrees += (delta["ci_lower"] > 0 or delta["ci_upper"] < 0) != rejects
    assert delta_disagrees > 0  # the file holds the case the delta method gets wrong
    monkeypatch.setenv("COLUMNS", "200")
    table = invoke(monkeypatch, url, *args).output
    assert "rel. lift [Fieller CI]" in table
    for c in rows:
        fieller = c["relative_fieller"]
        assert f"[{fieller['ci_lower']:+.1%}, {fieller['ci_upper']:+.1%}]" in table
