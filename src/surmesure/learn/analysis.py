"""One experiment, one metric: every variant against control, a sample-ratio check, a breakdown.

The entry point the CLI, the API and reports call. Input is sufficient statistics per variant
(and per segment for a breakdown); output is frozen dataclasses that :func:`as_dict` turns into
JSON-ready dicts (NaN stays NaN; JSON writers emit it as null).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from surmesure.errors import InvalidInput
from surmesure.learn.bayesian import effect_posterior
from surmesure.learn.beta_binomial import beta_binomial
from surmesure.learn.frequentist import Comparison, compare
from surmesure.learn.moments import Moments
from surmesure.learn.multiple import benjamini_hochberg
from surmesure.learn.sequential import DEFAULT_TUNING, compare_sequential
from surmesure.learn.srm import DEFAULT_THRESHOLD, SampleRatioCheck, sample_ratio_check


@dataclass(frozen=True, slots=True)
class BayesSummary:
    """Chance that treatment beats control, expected loss of shipping it, and the credible
    interval of the absolute difference. ``model`` is "beta-binomial" or "normal"."""

    model: Literal["beta-binomial", "normal"]
    chance_to_beat: float
    expected_loss: float
    ci_lower: float
    ci_upper: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class VariantResult:
    variant: str
    n: int
    mean: float
    comparison: Comparison | None
    bayes: BayesSummary | None
    p_value_adjusted: float = math.nan


@dataclass(frozen=True, slots=True)
class ExperimentResult:
    control: str
    variants: tuple[VariantResult, ...]
    srm: SampleRatioCheck
    segment: str | None = None


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Per-segment results; ``p_value_adjusted`` is Benjamini-Hochberg over every cell."""

    column: str
    segments: tuple[ExperimentResult, ...]


def bayes_summary(control: Moments, treatment: Moments, alpha: float, cuped: bool) -> BayesSummary:
    uses_covariate = cuped and control.covariate is not None and treatment.covariate is not None
    if control.kind == treatment.kind == "binomial" and not uses_covariate:
        r = beta_binomial(control.sum, control.n, treatment.sum, treatment.n, alpha=alpha)
        return BayesSummary(
            "beta-binomial",
            r.chance_to_beat,
            r.expected_loss_treatment,
            r.difference.lower,
            r.difference.upper,
        )
    p = effect_posterior(control, treatment, scale="absolute", alpha=alpha, cuped=cuped)
    return BayesSummary(
        "normal", p.chance_to_win, p.risk_treatment, p.ci_lower, p.ci_upper, p.reason
    )


def analyze(
    moments: Mapping[str, Moments],
    control: str,
    weights: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning: float = DEFAULT_TUNING,
    cuped: bool = True,
    srm_threshold: float = DEFAULT_THRESHOLD,
    segment: str | None = None,
) -> ExperimentResult:
    """Compare each variant in ``moments`` with ``control``; check the split (equal by default)."""
    if control not in moments:
        raise InvalidInput(
            f"Control variant {control!r} is not among {sorted(moments)}.",
            field="control",
            hint="name one of the observed variants as control",
        )
    if weights is not None and set(weights) != set(moments):
        raise InvalidInput(
            f"Weights name {sorted(weights)} but variants are {sorted(moments)}.",
            field="weights",
            hint="give one weight per variant",
        )
    base = moments[control]
    rows = [VariantResult(control, base.n, base.mean, None, None)]
    for name, m in moments.items():
        if name == control:
            continue
        if sequential:
            comparison = compare_sequential(base, m, alpha, tuning, cuped)
        else:
            comparison = compare(base, m, alpha, cuped=cuped)
        rows.append(
            VariantResult(name, m.n, m.mean, comparison, bayes_summary(base, m, alpha, cuped))
        )
    names = list(moments)
    srm = sample_ratio_check(
        [moments[v].n for v in names],
        None if weights is None else [weights[v] for v in names],
        srm_threshold,
    )
    return ExperimentResult(control, tuple(rows), srm, segment)


def breakdown(
    column: str,
    moments: Mapping[str, Mapping[str, Moments]],
    control: str,
    weights: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    sequential: bool = False,
    cuped: bool = True,
) -> Breakdown:
    """:func:`analyze` per segment, then BH-adjusted absolute-lift p-values across all cells.

    A segment lacking control gets an empty control (its cells carry the reason).
    """
    results: list[ExperimentResult] = []
    for seg, by_variant in moments.items():
        cells = dict(by_variant)
        if control not in cells:
            kind = next(iter(cells.values())).kind
            cells = {control: Moments(0, 0.0, 0.0, kind), **cells}
        results.append(
            analyze(cells, control, weights, alpha, sequential, cuped=cuped, segment=seg)
        )
    p = [
        v.comparison.absolute.p_value
        for r in results
        for v in r.variants
        if v.comparison is not None
    ]
    adjusted = iter(benjamini_hochberg(p).tolist())
    segments = tuple(
        dataclasses.replace(
            r,
            variants=tuple(
                v
                if v.comparison is None
                else dataclasses.replace(v, p_value_adjusted=next(adjusted))
                for v in r.variants
            ),
        )
        for r in results
    )
    return Breakdown(column, segments)


def as_dict(result: ExperimentResult | Breakdown | Sequence[Any] | Any) -> Any:
    """A JSON-ready view of any result dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {f.name: as_dict(getattr(result, f.name)) for f in dataclasses.fields(result)}
    if isinstance(result, list | tuple):
        return [as_dict(x) for x in result]
    return result
