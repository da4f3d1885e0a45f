"""Our engine against GrowthBook's gbstats on a versioned table of cases, and gbstats live."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from gbstats_reference import CASES_PATH, INPUTS, SCALES, gbstats_outputs, our_outputs

TABLE: list[dict[str, Any]] = json.loads(CASES_PATH.read_text())
NAMES = [case["name"] for case in TABLE]


def assert_close(ours: Any, theirs: Any, tol: float, where: str) -> None:
    if isinstance(theirs, dict):
        for key in ("expected", "ci", "p_value", "chance_to_win", "risk"):
            if key in theirs:
                assert_close(ours[key], theirs[key], tol, f"{where}.{key}")
    elif isinstance(theirs, list):
        for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
            assert_close(o, t, tol, f"{where}[{i}]")
    else:
        assert ours is not None and not math.isnan(ours), where
        assert ours == pytest.approx(theirs, abs=tol), where


def test_table_covers_every_input() -> None:
    assert [c["name"] for c in INPUTS] == NAMES


@pytest.mark.parametrize("case", TABLE, ids=NAMES)
def test_our_figures_match_the_versioned_gbstats_table(case: dict[str, Any]) -> None:
    ours = our_outputs(case)
    for test, expected in case["gbstats"].items():
        if expected["error"] is not None:
            # gbstats returns a neutral default; we return NaN figures and a reason.
            assert ours[test]["error"] is not None, test
            continue
        assert ours[test]["error"] is None, test
        assert_close(ours[test], expected, 1e-6, test)


@pytest.mark.parametrize("case", TABLE, ids=NAMES)
def test_versioned_table_equals_gbstats_live(case: dict[str, Any]) -> None:
    """The table is what gbstats gives today, to the last bits a processor's own maths
    library may round differently (1e-12 relative)."""
    inputs = {k: v for k, v in case.items() if k != "gbstats"}
    live = gbstats_outputs(inputs)
    assert live.keys() == case["gbstats"].keys()
    for test, kept in case["gbstats"].items():
        assert live[test]["error"] == kept["error"], test
        _same(live[test], kept, test)


def _same(live: Any, kept: Any, where: str) -> None:
    if isinstance(kept, dict):
        assert live.keys() == kept.keys(), where
        for key in kept:
            _same(live[key], kept[key], f"{where}.{key}")
    elif isinstance(kept, list):
        assert len(live) == len(kept), where
        for i, (a, b) in enumerate(zip(live, kept, strict=True)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(kept, float) and not isinstance(live, str):
        assert live == pytest.approx(kept, rel=1e-12, abs=1e-15, nan_ok=True), where
    else:
        assert live == kept, where


def test_table_exercises_every_engine_and_an_undefined_case() -> None:
    tests = {f"{name}_{scale}" for name in ("ttest", "sequential", "bayesian") for scale in SCALES}
    assert all(set(case["gbstats"]) == tests for case in TABLE)
    assert any(case["gbstats"]["ttest_absolute"]["error"] for case in TABLE)
    assert {case["kind"] for case in TABLE} == {"binomial", "mean", "mean_ra", "binomial_ra"}
