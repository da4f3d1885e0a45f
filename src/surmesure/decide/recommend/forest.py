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

from collections.abc import Mapping
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
        baseline, features = arrays[f"{prefix}shape"].tolist()
        return cls(nodes, arrays[f"{prefix}starts"].astype(np.int64), baseline, int(features))

    def predict_proba(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """``[[1 - p, p], ...]`` as the classifier's ``predict_proba`` gives them."""
        raw = np.full(x.shape[0], self.baseline)
        if x.shape[0]:
            data = np.ascontiguousarray(x, dtype=np.float64)
            features = np.zeros(self.features, dtype=np.uint32)
            for tree in self._trees():
                raw += tree.predict(data, _NO_CATEGORIES, features, 1)
        p = expit(raw)
        return np.column_stack((1.0 - p, p))

    def _trees(self) -> list[Any]:
        if not self.predictors:
            from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

            bounds = zip(self.starts[:-1].tolist(), self.starts[1:].tolist(), strict=True)
            made = [TreePredictor(self.nodes[a:b], _NO_BITSETS, _NO_BITSETS) for a, b in bounds]
            self.predictors[:] = made  # one step: two threads at once make the same list
        return self.predictors


_NO_CATEGORIES = np.zeros((0, 8), dtype=np.uint32)
_NO_BITSETS = np.zeros((0, 8), dtype=np.uint32)
