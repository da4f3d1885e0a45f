"""Undefined statistics return a reason; caller mistakes raise InvalidInput naming the field."""

from __future__ import annotations

import math

import pytest

from surmesure.errors import InvalidInput
from surmesure.learn import Moments, analyze, compare, compare_sequential, effect_posterior
from surmesure.learn.effects import EMPTY, ZERO_BASELINE, ZERO_VARIANCE


def test_empty_variant_gives_a_reason() -> None:
    control, empty = Moments.binomial(1000, 120), Moments.binomial(0, 0)
    for result in (compare(control, empty), compare_sequential(control, empty)):
        assert result.reason == EMPTY
        assert math.isnan(result.absolute.p_value)
    assert effect_posterior(control, empty).reason == EMPTY


def test_zero_variance_and_zero_baseline_give_reasons() -> None:
    flat = Moments(50, 250.0, 1250.0)  # everyone spent exactly 5
    other = Moments(50, 260.0, 1400.0)
    assert compare(flat, other).absolute.reason == ZERO_VARIANCE
    nobody = Moments.binomial(1000, 0)
    some = Moments.binomial(1000, 12)
    result = compare(nobody, some)
    assert result.absolute.reason == ZERO_VARIANCE
    zero_mean = Moments(3, 0.0, 2.0)  # values -1, 0, 1
    relative = compare(zero_mean, Moments(3, 3.0, 5.0)).relative
    assert relative.reason == ZERO_BASELINE


def test_caller_mistakes_raise_with_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        Moments(-1, 0.0, 0.0)
    assert err.value.field == "n" and err.value.hint
    with pytest.raises(InvalidInput) as err:
        Moments.binomial(10, 11)
    assert err.value.field == "sum"
    with pytest.raises(InvalidInput) as err:
        compare(Moments(10, 1.0, 2.0), Moments(10, 1.0, 2.0), alpha=0)
    assert err.value.field == "alpha"
    with pytest.raises(InvalidInput) as err:
        analyze({"a": Moments(10, 1.0, 2.0)}, control="b")
    assert err.value.field == "control"
