"""Hashed assignment: sticky, stable under growing weights, exclusive in layers, uniform."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from surmesure.errors import InvalidInput
from surmesure.learn import Experiment, Layer, bucket, buckets

IDS = np.arange(100_000, dtype=np.int64)


def test_single_and_batch_agree_and_are_sticky() -> None:
    batch = buckets("promo-2024", IDS)
    again = buckets("promo-2024", IDS.copy())
    np.testing.assert_array_equal(batch, again)
    assert [bucket("promo-2024", int(i)) for i in IDS[:500]] == batch[:500].tolist()
    texts = np.array([f"person-{i}" for i in range(500)])
    assert [bucket("promo-2024", str(t)) for t in texts] == buckets("promo-2024", texts).tolist()
    exp = Experiment("promo-2024", (0.5, 0.5))
    assert [exp.assign(int(i)) for i in IDS[:500]] == exp.assign_many(IDS[:500]).tolist()
    assert ((batch >= 0) & (batch < 1)).all()


def test_other_salts_give_independent_buckets() -> None:
    a = buckets("a", IDS) < 0.5
    b = buckets("b", IDS) < 0.5
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_buckets_are_uniform() -> None:
    counts = np.bincount((buckets("uniformity", IDS) * 100).astype(int), minlength=100)
    assert stats.chisquare(counts).pvalue > 0.001
    shares = np.bincount(Experiment("split", (0.5, 0.5)).assign_many(IDS), minlength=2)
    assert stats.chisquare(shares).pvalue > 0.001


def test_people_stay_in_their_variant_when_weights_grow() -> None:
    before = Experiment("ramp", (0.05, 0.05)).assign_many(IDS)
    after = Experiment("ramp", (0.3, 0.45)).assign_many(IDS)
    kept = before >= 0
    assert kept.sum() > 9_000
    np.testing.assert_array_equal(after[kept], before[kept])
    assert (after >= 0).sum() > 70_000
    assert abs(np.mean(after == 0) - 0.3) < 0.01 and abs(np.mean(after == 1) - 0.45) < 0.01


def test_layers_are_mutually_exclusive_and_shares_hold() -> None:
    exp_a = Experiment("banner", (0.5, 0.5))
    exp_b = Experiment("subject", (1 / 3, 1 / 3, 1 / 3))
    layer = Layer("homepage", [exp_a, exp_b], (0.4, 0.6))
    which, variant = layer.assign_many(IDS)
    assert set(np.unique(which).tolist()) == {0, 1}
    assert abs(np.mean(which == 0) - 0.4) < 0.01
    # each person's variant is the one of their own experiment only
    np.testing.assert_array_equal(variant[which == 0], exp_a.assign_many(IDS[which == 0]))
    np.testing.assert_array_equal(variant[which == 1], exp_b.assign_many(IDS[which == 1]))
    assert layer.assign(int(IDS[7])) == (int(which[7]), int(variant[7]))
    other = Layer("checkout", [Experiment("x", (0.5, 0.5))], (1.0,)).assign_many(IDS)[1]
    table = np.histogram2d(which, other, bins=2)[0]
    assert stats.chi2_contingency(table).pvalue > 0.001  # layers are orthogonal


def test_weights_beyond_their_slot_are_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        Experiment("x", (0.7, 0.3))
    assert err.value.field == "weights"
    assert Experiment("x", (0.7, 0.3), capacity=(0.7, 0.3)).assign(1) in (0, 1)
