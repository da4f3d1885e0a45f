"""A fitted gradient-boosted forest as plain arrays: what the learned ranker keeps in the store.

scikit-learn's ``HistGradientBoostingClassifier`` (binary, numerical features) predicts the
sigmoid of its baseline plus the sum of its trees' leaf values. Each tree is one structured
array of nodes (feature, threshold, where a missing value goes, children, leaf value), so the
forest is those node arrays laid end to end, where each tree starts, and the baseline: data
that ``numpy`` writes and reads back without pickle (:meth:`Forest.arrays`,
:meth:`Forest.from_arrays`), a stored row being data, not code. Predictions walk the trees
with scikit-learn's own compiled tree predictor, so they equal the classifier's to the bit.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit


@dataclass(frozen=True, eq=False)
class Forest:
    """The trees' nodes end to end, where each tree starts (and the end), the baseline."""

    nodes: NDArray[Any]
    starts: NDArray[np.int64]
    baseline: float
    features: int
    #: the trees' predictors, made at the first prediction
    predictors: list[Any] = field(default_factory=list, repr=False)
    #: the trees as tables of leaves (:class:`Tables`), made at the first prediction
    tables: list[Any] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, classifier: Any) -> Forest:
        """The forest of a fitted binary ``HistGradientBoostingClassifier`` on numerical
        features (its only form the ranker trains)."""
        if classifier.n_trees_per_iteration_ != 1 or classifier.is_categorical_ is not None:
            raise ValueError("only a binary classifier on numerical features is kept as arrays")
        trees = [predictors[0].nodes for predictors in classifier._predictors]
        starts = np.cumsum([0, *(len(t) for t in trees)], dtype=np.int64)
        return cls(
            np.concatenate(trees),
            starts,
            float(np.asarray(classifier._baseline_prediction).ravel()[0]),
            int(classifier.n_features_in_),
        )

    def arrays(self, prefix: str) -> dict[str, NDArray[Any]]:
        """The forest as named arrays (for ``numpy.savez``), each name led by ``prefix``."""
        return {
            f"{prefix}nodes": self.nodes,
            f"{prefix}starts": self.starts,
            f"{prefix}shape": np.asarray([self.baseline, self.features], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]], prefix: str) -> Forest:
        from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

        nodes = arrays[f"{prefix}nodes"]
        if nodes.dtype != PREDICTOR_RECORD_DTYPE:
            raise ValueError(
                "the kept ranker's trees were written by another scikit-learn node layout: "
                "fit the recommendation model again (surmesure recommend --fit)"
            )
        shape, starts = arrays[f"{prefix}shape"], arrays[f"{prefix}starts"]
        if shape.shape != (2,) or starts.ndim != 1 or starts.dtype.kind not in "iu":
            raise ValueError(f"the kept ranker's {prefix}shape or {prefix}starts is malformed")
        baseline, features = shape.tolist()
        made = cls(nodes, starts.astype(np.int64), baseline, int(features))
        made.check()
        return made

    def check(self) -> None:
        """:class:`ValueError` unless the trees are trees (each child after its parent,
        inside its tree; features the forest has), so walking them ends inside the arrays."""
        starts, n = self.starts, len(self.nodes)
        if not (
            np.isfinite(self.baseline)
            and self.features > 0
            and starts.size >= 2
            and starts[0] == 0
            and starts[-1] == n
            and bool(np.all(np.diff(starts) > 0))
        ):
            raise ValueError("the kept ranker's trees do not cover its nodes one after another")
        tree = np.repeat(np.arange(starts.size - 1), np.diff(starts))
        inner = ~self.nodes["is_leaf"].astype(bool)
        place = (np.arange(n) - starts[:-1][tree])[inner]  # each split's place in its tree
        size = np.diff(starts)[tree][inner]  # and its tree's size
        for side in ("left", "right"):
            child = self.nodes[side].astype(np.int64)[inner]
            if not bool(np.all((child > place) & (child < size))):
                raise ValueError(f"a node of the kept ranker's trees has a {side} child outside")
        features = self.nodes["feature_idx"].astype(np.int64)[inner]
        if not bool(np.all((features >= 0) & (features < self.features))):
            raise ValueError("a node of the kept ranker's trees splits on a feature it lacks")

    def predict_proba(
        self, x: NDArray[np.float64], groups: Sequence[Sequence[int]] = ()
    ) -> NDArray[np.float64]:
        """``[[1 - p, p], ...]`` as the classifier's ``predict_proba`` gives them. ``groups``:
        columns whose values repeat together over many rows (a person's, a product's): the
        trees' verdicts on them are found once per distinct combination (the same sums)."""
        raw = np.full(x.shape[0], self.baseline)
        if x.shape[0] and np.isnan(x).any():  # (the ranker's features are never missing)
            data = np.ascontiguousarray(x, dtype=np.float64)
            features = np.zeros(self.features, dtype=np.uint32)
            for tree in self._trees():
                raw += tree.predict(data, _NO_CATEGORIES, features, 1)
        elif x.shape[0]:
            tables = self.leaf_tables()
            for start in range(0, x.shape[0], BLOCK):
                tables.add_leaves(x[start : start + BLOCK], raw[start : start + BLOCK], groups)
        p = expit(raw)
        return np.column_stack((1.0 - p, p))

    def leaf_tables(self) -> Tables:
        """The trees as tables of leaves (:class:`Tables`), made once."""
        if not self.tables:
            made = Tables.of(self)
            self.tables[:] = [made]
        found: Tables = self.tables[0]
        return found

    def _trees(self) -> list[Any]:
        if not self.predictors:
            from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

            bounds = zip(self.starts[:-1].tolist(), self.starts[1:].tolist(), strict=True)
            made = [TreePredictor(self.nodes[a:b], _NO_BITSETS, _NO_BITSETS) for a, b in bounds]
            self.predictors[:] = made  # one step: two threads at once make the same list
        return self.predictors


_NO_CATEGORIES = np.zeros((0, 8), dtype=np.uint32)
_NO_BITSETS = np.zeros((0, 8), dtype=np.uint32)


#: rows whose leaves are found together (their masks: ``BLOCK`` x trees x 4 bytes, some
#: 600 KB with 150 trees: a core's cache holds them through the passes over them)
BLOCK = 1024
#: rows whose leaves are turned tree by tree at once (:meth:`Tables.add_leaves`)
TURNED = 512
#: at most this many rows (one person's candidates), the leaves' values are gathered for
#: every tree at once rather than added tree by tree: a call per tree costs more than the
#: adding then
FEW = 256
#: rows whose leaves' values are gathered together then (trees x rows x 8 bytes: some 70 KB
#: with 88 trees)
SUMMED = 96


@dataclass(frozen=True)
class Tables:
    """The forest walked without branching, for many rows at once (QuickScorer, Lucchese et
    al., SIGIR 2015). Each tree's leaves are numbered left to right (31 at most: one bit each
    of a ``uint32``). A split ``x[f] <= t`` that fails rules out its left subtree's leaves, so
    the leaf a row reaches is the leftmost one left once every failing split of every feature
    has struck out its own: per feature, the splits sorted by threshold, the masks of the
    first ``j`` of them ANDed beforehand (``masks[f][j]``, ``j`` the number of thresholds below
    the row's value). The leaves' values are added tree after tree, in the order scikit-learn
    adds them, so each sum is the same to the bit."""

    thresholds: tuple[NDArray[np.float64], ...]
    masks: tuple[NDArray[np.uint32], ...]
    values: NDArray[np.float64]

    @classmethod
    def of(cls, forest: Forest) -> Tables:
        trees = len(forest.starts) - 1
        values = np.zeros((trees, 33))  # (leaf i at i + 1: see ``add_leaves``)
        splits: list[list[tuple[float, int, int]]] = [[] for _ in range(forest.features)]
        for t in range(trees):
            nodes = forest.nodes[forest.starts[t] : forest.starts[t + 1]]
            leaves: dict[int, int] = {}  # node -> its place among the leaves, left to right
            stack, order = [0], []
            while stack:  # depth first, left child first: the leaves come left to right
                n = stack.pop()
                if nodes["is_leaf"][n]:
                    leaves[n] = len(leaves)
                    values[t, leaves[n] + 1] = nodes["value"][n]
                else:
                    order.append(n)
                    stack += [int(nodes["right"][n]), int(nodes["left"][n])]
            if len(leaves) > 32:
                raise ValueError("a tree of more than 32 leaves is walked by its predictor")
            under = _leaves_under(nodes, leaves)
            for n in order:
                left = under[int(nodes["left"][n])]
                mask = np.uint32(~left & 0xFFFFFFFF)
                splits[int(nodes["feature_idx"][n])].append(
                    (float(nodes["num_threshold"][n]), t, int(mask))
                )
        thresholds, masks = [], []
        for found in splits:
            found.sort(key=lambda s: s[0])
            at = np.asarray([s[0] for s in found], dtype=np.float64)
            table = np.full((len(found) + 1, trees), 0xFFFFFFFF, dtype=np.uint32)
            for j, (_, tree, bits) in enumerate(found):
                table[j + 1] = table[j]
                table[j + 1, tree] &= np.uint32(bits)
            thresholds.append(at)
            masks.append(table)
        return cls(tuple(thresholds), tuple(masks), values)

    def add_leaves(
        self,
        x: NDArray[np.float64],
        raw: NDArray[np.float64],
        groups: Sequence[Sequence[int]] = (),
        known: tuple[NDArray[np.uint32], Sequence[int]] | None = None,
    ) -> None:
        """Add to ``raw`` the leaves' values each row reaches, tree after tree (``groups``:
        see :meth:`Forest.predict_proba`; ``known``: each row's leaves :meth:`left` by some
        features, found beforehand (an array this call uses up), and those features)."""
        if known is None:
            alive = np.full((x.shape[0], self.values.shape[0]), 0xFFFFFFFF, dtype=np.uint32)
            grouped = {f for group in groups for f in group}
        else:
            alive = known[0]
            grouped = {f for group in (*groups, known[1]) for f in group}
        for group in groups:
            wanted = [f for f in group if self.thresholds[f].size]
            if wanted:
                _, first, inverse = np.unique(
                    self.key(wanted, x[:, wanted]), return_index=True, return_inverse=True
                )
                alive &= self.left(wanted, x[first][:, wanted])[inverse]
        for f, (at, table) in enumerate(zip(self.thresholds, self.masks, strict=True)):
            if at.size and f not in grouped:
                alive &= table.take(at.searchsorted(x[:, f], side="left"), axis=0)
        # the leftmost leaf left: the lowest bit set, counted with the bits below it (leaf
        # ``i`` counts ``i + 1``, where its value is kept)
        alive ^= alive - np.uint32(1)
        by_row = np.bitwise_count(alive)
        if by_row.shape[0] <= FEW:
            self._add_few(by_row, raw)
            return
        # each tree's leaves of the rows side by side (bytes: a quarter of the copy), turned
        # a few rows at a time (a cache's worth: the copy strides less far)
        leaf = np.empty(by_row.shape[::-1], np.uint8)
        for start in range(0, by_row.shape[0], TURNED):
            leaf[:, start : start + TURNED] = by_row[start : start + TURNED].T
        for t, values in enumerate(self.values):
            raw += values.take(leaf[t])

    def _add_few(self, by_row: NDArray[np.uint8], raw: NDArray[np.float64]) -> None:
        """:meth:`add_leaves`'s sum for a few rows: every tree's leaf value gathered at once
        under the rows' running sums, then summed down the trees, one after another (a sum
        over an array's first axis adds its lines in order: the same sums to the bit)."""
        trees = self.values.shape[0]
        flat = self.values.ravel()
        offsets = np.arange(0, trees * self.values.shape[1], self.values.shape[1])[:, None]
        for start in range(0, by_row.shape[0], SUMMED):
            part = by_row[start : start + SUMMED]
            rows = part.shape[0]
            if rows == 1:  # one column is summed as a flat array, pairwise: two in order
                part = np.concatenate((part, part))
            # (small enough to be reused from the allocator's heap, not mapped afresh)
            lines = np.empty((trees + 1, part.shape[0]))
            lines[0] = raw[start : start + rows]
            flat.take(part.T + offsets, out=lines[1:])
            raw[start : start + rows] = np.add.reduce(lines, axis=0)[:rows]

    def left(self, features: Sequence[int], values: NDArray[np.float64]) -> NDArray[np.uint32]:
        """Each row's leaves left in each tree (a bit each) once its ``values`` of
        ``features`` (a column each) have struck out theirs: rows x trees."""
        found = np.full((values.shape[0], self.values.shape[0]), 0xFFFFFFFF, dtype=np.uint32)
        for column, f in enumerate(features):
            if self.thresholds[f].size:
                found &= self.masks[f][self._place(f, values[:, column])]
        return found

    def left_of_one(self, features: Sequence[int], values: Sequence[float]) -> NDArray[np.uint32]:
        """:meth:`left` of one row (``values``: one number a feature, none missing), its
        places among the thresholds found by bisection (the same places, without an array
        call per feature): one mask a tree."""
        found = np.full(self.values.shape[0], 0xFFFFFFFF, dtype=np.uint32)
        for f, value in zip(features, values, strict=True):
            at = self.thresholds[f]
            if at.size:
                found &= self.masks[f][bisect_left(at, value)]
        return found

    def key(self, features: Sequence[int], values: NDArray[np.float64]) -> NDArray[np.int64]:
        """One number for each row's places among ``features``' thresholds (``values``: a
        column each): rows of one key reach the same leaves as far as these features tell."""
        key = np.zeros(values.shape[0], np.int64)
        for column, f in enumerate(features):
            key = key * (self.thresholds[f].size + 1) + self._place(f, values[:, column])
        return key

    def _place(self, f: int, values: NDArray[np.float64]) -> NDArray[np.intp]:
        """How many of feature ``f``'s thresholds are strictly below each value (the splits
        that send it right)."""
        return np.searchsorted(self.thresholds[f], values, side="left")


def _leaves_under(nodes: NDArray[Any], leaves: dict[int, int]) -> dict[int, int]:
    """Each node's leaves as bits (bit ``i``: the ``i``-th leaf from the left)."""
    under: dict[int, int] = {}

    def walk(n: int) -> int:
        if n in leaves:
            under[n] = 1 << leaves[n]
        else:
            under[n] = walk(int(nodes["left"][n])) | walk(int(nodes["right"][n]))
        return under[n]

    walk(0)
    return under
