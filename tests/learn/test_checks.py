"""Sample-ratio check, Benjamini-Hochberg, power and MDE against peer libraries."""

from __future__ import annotations

import numpy as np
import pytest
from gbstats.utils import check_srm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower, tt_ind_solve_power

from surmesure.errors import InvalidInput
from surmesure.learn import (
    benjamini_hochberg,
    minimum_detectable_effect,
    power,
    sample_ratio_check,
    sample_size,
)


def test_srm_flags_a_skewed_split_and_passes_a_fair_one() -> None:
    skewed = sample_ratio_check([10_000, 10_600])
    fair = sample_ratio_check([10_000, 10_050])
    assert skewed.mismatch and not fair.mismatch
    assert skewed.p_value == pytest.approx(stats.chisquare([10_000, 10_600]).pvalue, abs=1e-15)
    assert fair.p_value == pytest.approx(check_srm([10_000, 10_050], [0.5, 0.5]), abs=1e-12)


def test_srm_uses_the_designed_weights() -> None:
    counts = [2_000, 6_000, 2_100]
    weights = [0.2, 0.6, 0.2]
    result = sample_ratio_check(counts, weights)
    assert result.p_value == pytest.approx(check_srm(counts, weights), abs=1e-12)
    assert sample_ratio_check(counts).mismatch  # against an equal split it is way off


def test_srm_with_nobody_observed_has_a_reason() -> None:
    result = sample_ratio_check([0, 0])
    assert result.reason and not result.mismatch


def test_srm_rejects_bad_weights() -> None:
    with pytest.raises(InvalidInput) as err:
        sample_ratio_check([10, 10], [0.5])
    assert err.value.field == "weights"


def test_benjamini_hochberg_matches_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 7, 60):
        p = np.concatenate([rng.uniform(size=size), rng.uniform(0, 0.01, size=size // 3)])
        _, expected, _, _ = multipletests(p, method="fdr_bh")
        np.testing.assert_allclose(benjamini_hochberg(p), expected, rtol=0, atol=1e-15)


def test_benjamini_hochberg_skips_undefined_cells() -> None:
    out = benjamini_hochberg([0.01, float("nan"), 0.04])
    _, expected, _, _ = multipletests([0.01, 0.04], method="fdr_bh")
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], expected, atol=1e-15)


@pytest.mark.parametrize("ratio", [1.0, 0.5, 3.0])
def test_power_matches_statsmodels(ratio: float) -> None:
    assert power(0.08, 900, 0.05, ratio, "z") == pytest.approx(
        NormalIndPower().power(0.08, 900, 0.05, ratio), abs=1e-12
    )
    assert power(0.08, 900, 0.05, ratio, "t") == pytest.approx(
        TTestIndPower().power(0.08, 900, 0.05, ratio), abs=1e-12
    )
    assert sample_size(0.05, 0.05, 0.8, ratio, "z") == pytest.approx(
        NormalIndPower().solve_power(0.05, None, 0.05, 0.8, ratio), rel=1e-7
    )
    assert sample_size(0.05, 0.01, 0.9, ratio, "t") == pytest.approx(
        tt_ind_solve_power(0.05, None, 0.01, 0.9, ratio), rel=1e-7
    )


def test_minimum_detectable_effect_matches_statsmodels() -> None:
    rate = 0.1062  # Hillstrom's control visit rate
    sd = np.sqrt(rate * (1 - rate))
    plan = minimum_detectable_effect(21_306, sd, 0.05, 0.8, test="t")
    # statsmodels' own power function puts our MDE at exactly the target power; its solver
    # stops within about 1e-5 of the root, so the solved effects agree to that precision.
    assert TTestIndPower().power(plan.effect_size, 21_306, 0.05, 1.0) == pytest.approx(
        0.8, abs=1e-9
    )
    expected = tt_ind_solve_power(None, 21_306, 0.05, 0.8, 1.0)
    assert plan.effect_size == pytest.approx(expected, rel=1e-4)
    assert plan.minimum_detectable_effect == pytest.approx(plan.effect_size * sd, rel=1e-12)
    z_plan = minimum_detectable_effect(5_000, 2.0, ratio=2.0)
    assert NormalIndPower().power(z_plan.effect_size, 5_000, 0.05, 2.0) == pytest.approx(
        0.8, abs=1e-9
    )
    assert z_plan.effect_size == pytest.approx(
        NormalIndPower().solve_power(None, 5_000, 0.05, 0.8, 2.0), rel=1e-4
    )


def test_power_rejects_bad_inputs_with_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        sample_size(0.0)
    assert err.value.field == "effect_size"
    with pytest.raises(InvalidInput) as err:
        power(0.1, 100, alpha=1.5)
    assert err.value.field == "alpha"
