"""Hillstrom's MineThatData e-mail test: published figures and peer-library intervals."""

from __future__ import annotations

import numpy as np
import pytest
from hillstrom_data import ARMS, CONTROL, hillstrom
from scipy import stats
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.proportion import confint_proportions_2indep
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from surmesure.learn import Moments, analyze, compare

pytestmark = pytest.mark.realdata

PUBLISHED = {
    "Mens E-Mail": (21_307, ".1828", ".0125", "1.42"),
    "Womens E-Mail": (21_387, ".1514", ".0088", "1.08"),
    "No E-Mail": (21_306, ".1062", ".0057", "0.65"),
}


def moments(arm: str, metric: str) -> Moments:
    values = hillstrom()[arm][metric]
    if metric == "spend":
        return Moments.of(values)
    return Moments.binomial(values.size, float(values.sum()))


@pytest.mark.parametrize("arm", ARMS)
def test_group_sizes_and_rates_match_the_published_figures(arm: str) -> None:
    size, visit, conversion, spend = PUBLISHED[arm]
    assert moments(arm, "visit").n == size
    assert f"{moments(arm, 'visit').mean:.4f}".lstrip("0") == visit
    assert f"{moments(arm, 'conversion').mean:.4f}".lstrip("0") == conversion
    assert f"{moments(arm, 'spend').mean:.2f}" == spend


def relative_delta(treat: Moments, ctrl: Moments) -> NonlinearDeltaCov:
    """statsmodels' delta method for (m_t - m_c) / m_c with the two means independent."""
    params = np.array([treat.mean, ctrl.mean])
    cov = np.diag([treat.variance / treat.n, ctrl.variance / ctrl.n])

    def ratio(p: np.ndarray) -> np.ndarray:
        return np.atleast_1d(p[0] / p[1] - 1)

    def deriv(p: np.ndarray) -> np.ndarray:
        return np.array([[1 / p[1], -p[0] / p[1] ** 2]])

    return NonlinearDeltaCov(ratio, params, cov, deriv=deriv)


@pytest.mark.parametrize("arm", ARMS[:2])
@pytest.mark.parametrize("metric", ["visit", "conversion"])
def test_proportion_lifts_match_statsmodels(arm: str, metric: str) -> None:
    treat, ctrl = moments(arm, metric), moments(CONTROL, metric)
    result = compare(ctrl, treat)
    low, high = confint_proportions_2indep(
        treat.sum, treat.n, ctrl.sum, ctrl.n, method="wald", compare="diff"
    )
    assert result.absolute.ci_lower == pytest.approx(low, abs=1e-9)
    assert result.absolute.ci_upper == pytest.approx(high, abs=1e-9)
    z = result.absolute.estimate / np.sqrt(treat.variance / treat.n + ctrl.variance / ctrl.n)
    assert result.absolute.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), abs=1e-12)
    ((rel_low, rel_high),) = relative_delta(treat, ctrl).conf_int(alpha=0.05)
    assert result.relative.ci_lower == pytest.approx(rel_low, abs=1e-9)
    assert result.relative.ci_upper == pytest.approx(rel_high, abs=1e-9)
    assert result.absolute.p_value < 1e-3  # both e-mails lift both rates


@pytest.mark.parametrize("arm", ARMS[:2])
def test_spend_lift_matches_welch_in_statsmodels(arm: str) -> None:
    data = hillstrom()
    treat_values, ctrl_values = data[arm]["spend"], data[CONTROL]["spend"]
    result = compare(Moments.of(ctrl_values), Moments.of(treat_values))
    peer = CompareMeans(DescrStatsW(treat_values), DescrStatsW(ctrl_values))
    low, high = peer.tconfint_diff(alpha=0.05, usevar="unequal")
    assert result.absolute.ci_lower == pytest.approx(low, abs=1e-9)
    assert result.absolute.ci_upper == pytest.approx(high, abs=1e-9)
    _, p_value, dof = ttest_ind(treat_values, ctrl_values, usevar="unequal")
    assert result.absolute.p_value == pytest.approx(p_value, abs=1e-9)
    assert result.dof == pytest.approx(dof, rel=1e-9)
    welch = stats.ttest_ind(treat_values, ctrl_values, equal_var=False)
    assert result.absolute.p_value == pytest.approx(welch.pvalue, abs=1e-9)
    delta = relative_delta(Moments.of(treat_values), Moments.of(ctrl_values))
    ((rel_low, rel_high),) = delta.conf_int(alpha=0.05, use_t=True, df=dof)
    assert result.relative.ci_lower == pytest.approx(rel_low, abs=1e-9)
    assert result.relative.ci_upper == pytest.approx(rel_high, abs=1e-9)


def test_three_arm_analysis_passes_the_sample_ratio_check() -> None:
    result = analyze({arm: moments(arm, "visit") for arm in ARMS}, CONTROL)
    assert [v.n for v in result.variants] == [21_306, 21_307, 21_387]
    assert not result.srm.mismatch
    expected = stats.chisquare([21_306, 21_307, 21_387])
    assert result.srm.p_value == pytest.approx(expected.pvalue, abs=1e-12)
    for row in result.variants[1:]:
        assert row.bayes is not None and row.bayes.chance_to_beat > 0.999
