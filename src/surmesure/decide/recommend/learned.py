"""Signals learned from everyone's purchases with the ``implicit`` library, fitted once per model.

- **neighbours**: item-item similarity of BM25-weighted person x product purchase counts
  (implicit's ``BM25Recommender``, the ``neighbours`` most similar products kept per product).
  A person's score for a product sums, over the products they bought, the similarity times a
  weight that halves every ``half_life_days`` since each purchase: the products bought by
  those who bought the same things, recent baskets speaking loudest.
- **tastes**: implicit's alternating least squares (ALS) on the same counts; a person's score
  for a product is the dot product of their factors with the product's. A person who was not
  in the fit (arrived since) is folded in from their purchases by the same least-squares step
  ALS takes, without refitting.

Both are fitted only when there are enough buyers and products for them to mean something
(:data:`MIN_PEOPLE`, :data:`MIN_PRODUCTS`); below that the model goes without them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

MIN_PEOPLE = 50
MIN_PRODUCTS = 20


@dataclass(frozen=True)
class Fit:
    """How the learned signals are fitted."""

    neighbours: int = 100
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    seed: int = 7


@dataclass(frozen=True)
class Learned:
    """The fitted signals: products by index, their similarity and factors, and the factors of
    each person in the fit."""

    codes: tuple[str, ...]
    index: Mapping[str, int]
    #: product x product similarity, row = bought product, column = candidate
    similarity: csr_matrix
    item_factors: NDArray[np.float32]
    person_row: Mapping[int, int]
    person_factors: NDArray[np.float32]
    regularization: float

    def neighbours(
        self,
        purchases: Iterable[tuple[datetime, str]],
        as_of: datetime,
        half_life_days: float,
        depth: int,
    ) -> list[tuple[str, float, str]]:
        """The ``depth`` products most similar to what was bought, best first: ``(code,
        score, the bought product that weighs most in it)``; bought products may appear."""
        weights = self.weights(purchases, as_of, half_life_days)
        if not weights:
            return []
        rows = np.fromiter(weights, dtype=np.int64, count=len(weights))
        w = np.fromiter(weights.values(), dtype=np.float64, count=len(weights))
        # the bought products' rows of the similarity, gathered flat: (antecedent, candidate,
        # weighted similarity) for every stored pair
        sim = self.similarity
        starts, ends = sim.indptr[rows], sim.indptr[rows + 1]
        lengths = ends - starts
        flat = np.repeat(ends - np.cumsum(lengths), lengths) + np.arange(lengths.sum())
        candidates = sim.indices[flat]
        parts = sim.data[flat] * np.repeat(w, lengths)
        scores = np.bincount(candidates, weights=parts, minlength=len(self.codes)).astype(
            np.float64, copy=False
        )
        best = _top(scores, depth)
        best = best[scores[best] > 0]
        if best.size == 0:
            return []
        # the strongest antecedent of each candidate: the one whose part is the largest
        largest = np.zeros(len(self.codes))
        np.maximum.at(largest, candidates, parts)
        held = parts == largest[candidates]
        strongest = np.empty(len(self.codes), dtype=np.int64)
        strongest[candidates[held]] = np.repeat(rows, lengths)[held]
        codes = self.codes
        return [
            (codes[j], score, codes[a])
            for j, score, a in zip(
                best.tolist(), scores[best].tolist(), strongest[best].tolist(), strict=True
            )
        ]

    def factors_of(self, person_id: int) -> NDArray[np.float32] | None:
        """The person's fitted factors (``None``: not in the fit)."""
        row = self.person_row.get(person_id)
        return None if row is None else self.person_factors[row]

    @cached_property
    def gram(self) -> NDArray[np.float64]:
        """The products' factors' Gram matrix plus the regularization, what every
        :func:`fold_in` adds a person's purchases to: made once, not at each fold-in."""
        return gram_of(self.item_factors, self.regularization)

    def without_people(self) -> Learned:
        """These signals without the people's factors (which grow with the people: 64 floats
        each), for a process told each person's factors (:meth:`tastes`'s ``factors``)."""
        empty = self.person_factors[:0]
        return replace(self, person_row={}, person_factors=empty)

    def tastes(
        self,
        person_id: int,
        purchases: Iterable[tuple[datetime, str]],
        depth: int,
        factors: NDArray[np.float32] | None = None,
    ) -> list[tuple[str, float]]:
        """The ``depth`` products closest to the person's tastes, best first (bought products
        may appear); empty for a person with no purchase of a known product. ``factors``: the
        person's fitted factors, given (else looked up, or folded in when not in the fit)."""
        scores = self.taste_scores(person_id, purchases, factors)
        if scores is None:
            return []
        best = _top(scores, depth)
        codes = self.codes
        return [
            (codes[j], score) for j, score in zip(best.tolist(), scores[best].tolist(), strict=True)
        ]

    def taste_scores(
        self,
        person_id: int,
        purchases: Iterable[tuple[datetime, str]],
        factors: NDArray[np.float32] | None = None,
    ) -> NDArray[np.float32] | None:
        """How close each product is to the person's tastes (:meth:`tastes`, unranked);
        ``None`` for a person with no purchase of a known product."""
        if factors is None:
            factors = self.factors_of(person_id)
        if factors is None:
            counts: dict[int, float] = {}
            for _, code in set(purchases):
                j = self.index.get(code)
                if j is not None:
                    counts[j] = counts.get(j, 0.0) + 1.0
            if not counts:
                return None
            factors = fold_in(self.item_factors, counts, self.regularization, self.gram)
        scores: NDArray[np.float32] = self.item_factors @ factors
        return scores

    def weights(
        self, purchases: Iterable[tuple[datetime, str]], as_of: datetime, half_life_days: float
    ) -> dict[int, float]:
        """What each bought product (by index) weighs in :meth:`neighbours`: a purchase
        halves every ``half_life_days``. The products come in the order first bought, each
        sum taken in the order of its purchases (what the batch path sums alike)."""
        weights: dict[int, float] = {}
        for at, code in dict.fromkeys(purchases):  # one (order time, product): one purchase
            j = self.index.get(code)
            if j is None:
                continue
            age = max((as_of - at).total_seconds() / 86_400.0, 0.0)
            weights[j] = weights.get(j, 0.0) + 0.5 ** (age / half_life_days)
        return weights


@dataclass(frozen=True)
class Counts:
    """How many times each person bought each product (a product counts once per order time):
    the person x product matrix the signals are fitted on, as coordinates."""

    #: the people who bought anything, by id: the matrix's rows
    people: NDArray[np.int64]
    #: the products bought, sorted: the matrix's columns
    codes: tuple[str, ...]
    row: NDArray[np.int64]
    column: NDArray[np.int64]
    count: NDArray[np.float32]


def counted(purchases: Mapping[int, Iterable[tuple[datetime, str]]]) -> Counts:
    """The counts of each person's ``(ordered_at, product_code)`` purchases."""
    counts: dict[tuple[int, str], int] = {}
    for pid, bought in purchases.items():
        for _, code in set(bought):
            counts[(pid, code)] = counts.get((pid, code), 0) + 1
    people = sorted({pid for pid, _ in counts})
    codes = tuple(sorted({code for _, code in counts}))
    person_row = {pid: i for i, pid in enumerate(people)}
    index = {code: j for j, code in enumerate(codes)}
    n = len(counts)
    return Counts(
        np.asarray(people, dtype=np.int64),
        codes,
        np.fromiter((person_row[p] for p, _ in counts), dtype=np.int64, count=n),
        np.fromiter((index[c] for _, c in counts), dtype=np.int64, count=n),
        np.fromiter(counts.values(), dtype=np.float32, count=n),
    )


def fit(
    purchases: Mapping[int, Iterable[tuple[datetime, str]]] | Counts, fit: Fit | None = None
) -> Learned | None:
    """Both signals from each person's ``(ordered_at, product_code)`` purchases, or their
    :class:`Counts`; ``None`` when there are too few buyers or products."""
    chosen = fit or Fit()
    counts = purchases if isinstance(purchases, Counts) else counted(purchases)
    people, codes = counts.people, counts.codes
    if len(people) < MIN_PEOPLE or len(codes) < MIN_PRODUCTS:
        return None
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import ItemItemRecommender, bm25_weight

    index = {code: j for j, code in enumerate(codes)}
    matrix = csr_matrix(
        (counts.count, (counts.row, counts.column)), shape=(len(people), len(codes))
    )
    # implicit's BM25Recommender, its weighting handed over as CSR (it warns on its own COO)
    weighted = bm25_weight(matrix.T, K1=chosen.bm25_k1, B=chosen.bm25_b).T.tocsr()
    knn = ItemItemRecommender(K=chosen.neighbours)
    knn.fit(weighted, show_progress=False)
    with threadpool_limits(1, "blas"):  # ALS runs its own threads; BLAS's would fight them
        als = AlternatingLeastSquares(
            factors=chosen.factors,
            iterations=chosen.iterations,
            regularization=chosen.regularization,
            random_state=chosen.seed,
        )
        als.fit(matrix, show_progress=False)
    return Learned(
        codes=codes,
        index=index,
        similarity=csr_matrix(knn.similarity),
        item_factors=np.asarray(als.item_factors, dtype=np.float32),
        person_row=IdRows(people),
        person_factors=np.asarray(als.user_factors, dtype=np.float32),
        regularization=chosen.regularization,
    )


class IdRows(Mapping[int, int]):
    """Person id -> row of a sorted array of ids: a dictionary's look-up without a Python
    object per person."""

    __slots__ = ("ids",)

    def __init__(self, ids: NDArray[np.int64]) -> None:
        self.ids = ids

    def get_row(self, person_id: object) -> int:
        """The row of ``person_id`` (-1: none)."""
        if not isinstance(person_id, int | np.integer):
            return -1
        row = int(np.searchsorted(self.ids, person_id))
        return row if row < len(self.ids) and self.ids[row] == person_id else -1

    def __getitem__(self, person_id: int) -> int:
        row = self.get_row(person_id)
        if row < 0:
            raise KeyError(person_id)
        return row

    def __contains__(self, person_id: object) -> bool:
        return self.get_row(person_id) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids.tolist())

    def __len__(self) -> int:
        return len(self.ids)


def gram_of(item_factors: NDArray[np.float32], regularization: float) -> NDArray[np.float64]:
    """``YᵀY + λI`` of the items' factors ``Y``: the part of a person's least-squares step
    (:func:`fold_in`) that is the same for everyone."""
    y = item_factors.astype(np.float64)
    return y.T @ y + regularization * np.eye(y.shape[1])


def fold_in(
    item_factors: NDArray[np.float32],
    counts: Mapping[int, float],
    regularization: float,
    gram: NDArray[np.float64] | None = None,
) -> NDArray[np.float32]:
    """A person's factors from their purchase counts, the items' factors held fixed: the
    least-squares step ALS takes for a person (implicit's: the count is the confidence,
    the preference is 1 on what was bought). ``gram``: :func:`gram_of` of the same factors
    and regularization, made once for many people (else made here)."""
    if gram is None:
        gram = gram_of(item_factors, regularization)
    rows = np.fromiter(counts, dtype=np.int64, count=len(counts))
    confidence = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    bought = item_factors[rows].astype(np.float64)
    a = gram + (bought.T * (confidence - 1.0)) @ bought
    return np.linalg.solve(a, bought.T @ confidence).astype(np.float32)


def _top(scores: NDArray[np.floating], n: int) -> NDArray[np.int64]:
    """Indices of the ``n`` highest scores, highest first (ties by index)."""
    head = np.argpartition(-scores, n)[:n] if n < scores.size else np.arange(scores.size)
    return head[np.lexsort((head, -scores[head]))]
