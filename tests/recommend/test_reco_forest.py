"""The learned ranker's forest as arrays: kept without pickle, read back, and walked as tables
of leaves, it gives scikit-learn's probabilities to the bit."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from surmesure.decide.recommend import forest
from surmesure.decide.recommend.forest import Forest


@pytest.fixture(scope="module")
def fitted() -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    """A classifier as the ranker trains one (smaller), on features like its own: places
    (whole numbers, ``1000`` for absent), ratios and counts; and rows to score."""
    rng = np.random.default_rng(3)

    def rows(n: int) -> np.ndarray:
        x = rng.random((n, 6))
        x[:, 0] = np.where(rng.random(n) < 0.3, 1000.0, np.floor(x[:, 0] * 100))
        x[:, 3] = np.floor(x[:, 3] * 40)
        return x

    x = rows(6_000)
    y = (x[:, 1] + 0.5 * rng.random(x.shape[0]) - x[:, 0] / 2000 + x[:, 3] / 100) > 0.9
    classifier = HistGradientBoostingClassifier(
        max_iter=30, max_leaf_nodes=31, min_samples_leaf=30, random_state=0
    )
    with threadpool_limits(1):  # one thread: several only wait for each other here
        classifier.fit(x, y)
    scored = rows(12_000)
    scored[:500] = x[:500]  # values the splits were cut between, and repeated
    scored[500:600, 3] = 7.0
    return classifier, scored


def test_the_forest_predicts_as_the_classifier(
    fitted: tuple[HistGradientBoostingClassifier, np.ndarray],
) -> None:
    classifier, x = fitted
    trees = Forest.of(classifier)
    assert len(trees.starts) == 31 and trees.features == 6
    expected = classifier.predict_proba(x)
    got = trees.predict_proba(x)
    assert got.shape == expected.shape and np.array_equal(got, expected)
    assert np.unique(got[:, 1]).size > 1000  # the rows reach many leaves
    # a block boundary changes nothing, nor does a missing value (the trees' own predictors)
    assert x.shape[0] > forest.BLOCK
    with_nan = x[:50].copy()
    with_nan[::7, 2] = np.nan
    assert np.array_equal(trees.predict_proba(with_nan), classifier.predict_proba(with_nan))
    assert trees.predict_proba(x[:0]).shape == (0, 2)


def test_leaves_found_beforehand_by_some_features_give_the_same_sums(
    fitted: tuple[HistGradientBoostingClassifier, np.ndarray],
) -> None:
    """The batch's form: the leaves left by a few features found once per distinct value
    (rows keyed by their places among the thresholds), ANDed for each row, the rest walked
    as usual: the classifier's probabilities to the bit."""
    classifier, x = fitted
    tables = Forest.of(classifier).leaf_tables()
    first_two = (0, 3)
    _, once, back = np.unique(
        tables.key(first_two, x[:, first_two]), return_index=True, return_inverse=True
    )
    assert once.size < x.shape[0] // 2  # the rows share their places: found once each
    known = tables.left(first_two, x[once][:, first_two])[back]
    raw = np.full(x.shape[0], Forest.of(classifier).baseline)
    tables.add_leaves(x, raw, ((1, 2),), known=(known, first_two))
    assert np.array_equal(expit(raw), classifier.predict_proba(x)[:, 1])


def test_the_forest_is_kept_as_arrays_without_pickle(
    fitted: tuple[HistGradientBoostingClassifier, np.ndarray],
) -> None:
    classifier, x = fitted
    out = io.BytesIO()
    kept: dict[str, Any] = Forest.of(classifier).arrays("r_")
    np.savez_compressed(out, **kept)
    out.seek(0)
    with np.load(out, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    again = Forest.from_arrays(arrays, "r_")
    assert np.array_equal(again.predict_proba(x), classifier.predict_proba(x))
    arrays["r_nodes"] = np.zeros(3, dtype=[("value", "<f8"), ("count", "<u4")])
    with pytest.raises(ValueError, match="recommend --fit"):
        Forest.from_arrays(arrays, "r_")


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (lambda a: a["r_nodes"]["left"].__setitem__(0, 0), "left child outside"),  # a cycle
        (lambda a: a["r_nodes"]["right"].__setitem__(0, 10**6), "right child outside"),
        (lambda a: a["r_nodes"]["feature_idx"].__setitem__(0, 99), "feature it lacks"),
        (lambda a: a["r_starts"].__setitem__(-1, 5), "one after another"),
        (lambda a: a.__setitem__("r_shape", np.zeros(3)), "malformed"),
    ],
)
def test_tampered_trees_are_refused_when_read(
    fitted: tuple[HistGradientBoostingClassifier, np.ndarray], tamper: Any, says: str
) -> None:
    """Trees whose children point back, out of their tree, or split on a feature the forest
    lacks are refused as they are read, before a walk loops forever or reads outside the
    arrays in compiled code."""
    classifier, _ = fitted
    arrays = {name: array.copy() for name, array in Forest.of(classifier).arrays("r_").items()}
    tamper(arrays)
    with pytest.raises(ValueError, match=says):
        Forest.from_arrays(arrays, "r_")


def test_a_few_rows_sum_their_trees_at_once_to_the_same_bits(
    fitted: tuple[HistGradientBoostingClassifier, np.ndarray],
) -> None:
    """One person's candidates (up to ``FEW`` rows) gather every tree's leaf at once: the
    classifier's probabilities to the bit, as the rows get them among many."""
    classifier, x = fitted
    trees = Forest.of(classifier)
    many = trees.predict_proba(x[: forest.FEW + 300])
    for n in (1, 2, 3, 7, forest.SUMMED, forest.SUMMED + 1, forest.SUMMED + 2, forest.FEW):
        got = trees.predict_proba(x[:n])
        assert np.array_equal(got, classifier.predict_proba(x[:n]))
        assert np.array_equal(got, many[:n])


def test_one_row_finds_the_leaves_left_as_many_rows_do(
    fitted: tuple[HistGradientBoostingClassifier, np.ndarray],
) -> None:
    """A person's features placed among the thresholds one by one (values on a threshold
    included) strike out the same leaves as the rows' array call."""
    classifier, x = fitted
    tables = Forest.of(classifier).leaf_tables()
    chosen = (0, 3, 5)
    rows = x[:600]  # the first 500 hold values the splits were cut between
    many = tables.left(chosen, rows[:, chosen])
    for r in range(rows.shape[0]):
        assert np.array_equal(tables.left_of_one(chosen, rows[r, chosen].tolist()), many[r])
