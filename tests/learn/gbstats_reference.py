"""Shared cases against GrowthBook's gbstats: inputs, gbstats' outputs, and ours.

Regenerate the versioned table with ``.venv/bin/python tests/learn/gbstats_reference.py``;
``test_gbstats.py`` checks the table against gbstats live, so it cannot drift.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.bayesian.tests import GaussianPrior as GbPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    TestStatistic,
)

from surmesure.learn import GaussianPrior, Moments, compare, compare_sequential, effect_posterior
from surmesure.learn.moments import Covariate

CASES_PATH = Path(__file__).parent / "cases" / "gbstats_cases.json"
SCALES = ("relative", "absolute")


def _arm(n: int, s: float, ss: float, pre: list[float] | None = None) -> dict[str, Any]:
    arm: dict[str, Any] = {"n": n, "sum": s, "sum_squares": ss}
    if pre is not None:
        arm["pre_sum"], arm["pre_sum_squares"], arm["cross"] = pre
    return arm


# Inputs: (name, kind, control, treatment, alpha, prior or None). Hillstrom's sufficient
# statistics (visit, spend; Mens E-Mail vs No E-Mail) are inlined so the table stands alone.
INPUTS: list[dict[str, Any]] = [
    {
        "name": "hillstrom_visit_mens",
        "kind": "binomial",
        "control": _arm(21306, 2262, 2262),
        "treatment": _arm(21307, 3894, 3894),
    },
    {
        "name": "hillstrom_spend_mens",
        "kind": "mean",
        "control": _arm(21306, 13908.33, 2870050.3621),
        "treatment": _arm(21307, 30311.69, 6759024.4973),
    },
    {
        "name": "small_rates",
        "kind": "binomial",
        "control": _arm(120, 9, 9),
        "treatment": _arm(130, 17, 17),
        "alpha": 0.1,
    },
    {
        "name": "revenue_negative_effect",
        "kind": "mean",
        "control": _arm(5000, 51234.5, 1_952_341.0),
        "treatment": _arm(4950, 48001.2, 1_880_552.0),
    },
    {
        "name": "revenue_proper_prior",
        "kind": "mean",
        "control": _arm(800, 4200.0, 61000.0),
        "treatment": _arm(820, 4650.0, 70100.0),
        "prior": {"mean": 0.02, "stddev": 0.1},
    },
    {
        "name": "cuped_mean",
        "kind": "mean_ra",
        "control": _arm(3000, 30200.0, 412000.0, [29800.0, 401000.0, 398000.0]),
        "treatment": _arm(3100, 31900.0, 437500.0, [30700.0, 412300.0, 409000.0]),
    },
    {
        "name": "cuped_binomial_post",
        "kind": "binomial_ra",
        "control": _arm(4000, 600, 600, [2400.0, 5200.0, 710.0]),
        "treatment": _arm(4100, 700, 700, [2500.0, 5450.0, 805.0]),
    },
    {
        "name": "zero_variance",
        "kind": "mean",
        "control": _arm(100, 500.0, 2500.0),
        "treatment": _arm(100, 520.0, 2800.0),
    },
]


def gb_statistic(kind: str, arm: dict[str, Any]) -> TestStatistic:
    post: ProportionStatistic | SampleMeanStatistic
    if kind.startswith("binomial"):
        post = ProportionStatistic(n=arm["n"], sum=arm["sum"])
    else:
        post = SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"])
    if not kind.endswith("_ra"):
        return post
    pre = SampleMeanStatistic(n=arm["n"], sum=arm["pre_sum"], sum_squares=arm["pre_sum_squares"])
    return RegressionAdjustedStatistic(
        n=arm["n"],
        post_statistic=post,
        pre_statistic=pre,
        post_pre_sum_of_products=arm["cross"],
        theta=0,
    )


def our_moments(kind: str, arm: dict[str, Any]) -> Moments:
    cov = None
    if kind.endswith("_ra"):
        cov = Covariate(arm["pre_sum"], arm["pre_sum_squares"], arm["cross"])
    metric = "binomial" if kind.startswith("binomial") else "mean"
    return Moments(arm["n"], arm["sum"], arm["sum_squares"], metric, cov)


def _freq(result: Any) -> dict[str, Any]:
    return {
        "expected": float(result.expected),
        "ci": [float(c) for c in result.ci],
        "p_value": float(result.p_value),
        "error": result.error_message,
    }


def gbstats_outputs(case: dict[str, Any]) -> dict[str, Any]:
    """gbstats' frequentist, sequential and Bayesian figures for one case, both scales."""
    kind, alpha = case["kind"], case.get("alpha", 0.05)
    prior = case.get("prior")
    out: dict[str, Any] = {}
    for scale in SCALES:

        def stats() -> tuple[TestStatistic, TestStatistic]:
            return gb_statistic(kind, case["control"]), gb_statistic(kind, case["treatment"])

        cfg = FrequentistConfig(alpha=alpha, difference_type=scale)
        out[f"ttest_{scale}"] = _freq(TwoSidedTTest(*stats(), cfg).compute_result())
        seq = SequentialConfig(alpha=alpha, difference_type=scale)
        out[f"sequential_{scale}"] = _freq(SequentialTwoSidedTTest(*stats(), seq).compute_result())
        gb_prior = GbPrior()
        if prior is not None:
            gb_prior = GbPrior(mean=prior["mean"], variance=prior["stddev"] ** 2, proper=True)
        bcfg = EffectBayesianConfig(
            alpha=alpha, difference_type=scale, prior_effect=gb_prior, prior_type=scale
        )
        b = EffectBayesianABTest(*stats(), bcfg).compute_result()
        out[f"bayesian_{scale}"] = {
            "chance_to_win": float(b.chance_to_win),
            "expected": float(b.expected),
            "ci": [float(c) for c in b.ci],
            "risk": [float(r) for r in b.risk],
            "error": b.error_message,
        }
    return out


def _nan_or(value: float) -> float | None:
    return None if math.isnan(value) else value


def our_outputs(case: dict[str, Any]) -> dict[str, Any]:
    """Our figures for the same case, in gbstats' layout."""
    kind, alpha = case["kind"], case.get("alpha", 0.05)
    control, treatment = our_moments(kind, case["control"]), our_moments(kind, case["treatment"])
    fixed = compare(control, treatment, alpha, distribution="t")
    seq = compare_sequential(control, treatment, alpha)
    prior = case.get("prior")
    out: dict[str, Any] = {}
    for scale in SCALES:
        for name, comparison in (("ttest", fixed), ("sequential", seq)):
            lift = getattr(comparison, scale)
            out[f"{name}_{scale}"] = {
                "expected": _nan_or(lift.estimate),
                "ci": [_nan_or(lift.ci_lower), _nan_or(lift.ci_upper)],
                "p_value": _nan_or(lift.p_value),
                "error": lift.reason,
            }
        gp = None
        if prior is not None:
            gp = GaussianPrior(prior["mean"], prior["stddev"] ** 2, proper=True)
        b = effect_posterior(control, treatment, scale, alpha, gp)
        out[f"bayesian_{scale}"] = {
            "chance_to_win": b.chance_to_win,
            "expected": _nan_or(b.expected),
            "ci": [_nan_or(b.ci_lower), _nan_or(b.ci_upper)],
            "risk": [_nan_or(b.risk_control), _nan_or(b.risk_treatment)],
            "error": b.reason,
        }
    return out


def build_table() -> list[dict[str, Any]]:
    return [{**case, "gbstats": gbstats_outputs(case)} for case in INPUTS]


if __name__ == "__main__":
    CASES_PATH.parent.mkdir(parents=True, exist_ok=True)
    CASES_PATH.write_text(json.dumps(build_table(), indent=2) + "\n")
    print(f"wrote {len(INPUTS)} cases to {CASES_PATH}")
