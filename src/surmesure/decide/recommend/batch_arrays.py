"""The arrays :mod:`~surmesure.decide.recommend.batch` ranks many people with: the products a
learned ranking may offer, their verdicts of stock and category, each row's best columns, the
fused reciprocal ranks, and everyone's neighbour scores summed at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from surmesure.decide.recommend import guardrails
from surmesure.decide.recommend.guardrails import Stock
from surmesure.decide.recommend.scoring import Scoring

if TYPE_CHECKING:
    from surmesure.decide.recommend.learned import Learned
    from surmesure.decide.recommend.model import Model


@dataclass(frozen=True)
class Universe:
    """Every product a learned ranking may offer, sorted by code (so an index order is the
    code order ties are broken by), with the learned products' places in it."""

    codes: tuple[str, ...]
    index: Mapping[str, int]
    learned: NDArray[np.int64]
    #: each product's index among the learned ones (``-1``: not learned)
    place: NDArray[np.int64]
    #: the codes as an array
    array: NDArray[np.str_]


def universe_of(model: Model, learned: Learned) -> Universe:
    found: Universe | None = model.memo.get("batch-universe")
    if found is None:
        from surmesure.decide.recommend.service import priors_of

        codes = set(learned.codes) | {c for c, _ in priors_of(model, None, True)}
        for segment in model.by_segment:
            codes |= {c for c, _ in priors_of(model, segment, True)}
        ordered = tuple(sorted(codes))
        index = {c: i for i, c in enumerate(ordered)}
        places = np.fromiter((index[c] for c in learned.codes), np.int64, len(learned.codes))
        place = np.full(len(ordered), -1, np.int64)
        place[places] = np.arange(len(places))
        found = model.memo["batch-universe"] = Universe(
            ordered, index, places, place, np.asarray(ordered)
        )
    return found


def allowed(
    model: Model, stock: Stock, universe: Universe, stores: tuple[str, ...]
) -> NDArray[np.bool_]:
    """Which products pass stock and category at ``stores`` (the same for everyone they serve)."""
    key = ("batch-allowed", model.built_at, stores)
    found: NDArray[np.bool_] | None = stock.memo.get(key)
    if found is None:
        nothing: set[str] = set()
        found = np.fromiter(
            (
                guardrails.allowed(c, banned=nothing, excluded=frozenset(), products=model.products,
                        stock=stock, stores=stores)
                for c in universe.codes
            ),
            np.bool_, len(universe.codes),
        )  # fmt: skip
        stock.memo[key] = found
    return found


def ordered(
    scores: NDArray[np.floating], depths: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Each row's best ``depths`` columns, highest score first, ties by column (the learned
    rankings' order), and which of the returned places are within the row's depth. Rows of
    like depth are sorted together (:data:`ROWS_SORTED`), each group only as deep as its
    deepest row: a few heavy buyers do not make everyone's sort as long as theirs."""
    n = scores.shape[1]
    m = int(min(depths.max(), n))
    best = np.zeros((len(scores), m), np.int64)
    by_depth = np.argsort(depths, kind="stable")
    for group in np.array_split(by_depth, max(1, len(by_depth) // ROWS_SORTED)):
        deep = int(min(depths[group].max(), n))
        best[group, :deep] = _best(scores[group], deep)
    return best, np.arange(m)[None, :] < depths[:, None]


ROWS_SORTED = 100
"""Rows of like depth whose best columns :func:`ordered` sorts together."""


def _best(scores: NDArray[np.floating], m: int) -> NDArray[np.int64]:
    """Each row's best ``m`` columns, highest score first, ties by column."""
    n = scores.shape[1]
    negative = -scores
    head = (
        np.argpartition(negative, m - 1, axis=1)[:, :m]
        if m < n
        else np.tile(np.arange(n), (len(scores), 1))
    )
    rows = np.arange(len(scores))[:, None]
    order = np.lexsort((head, negative[rows, head]), axis=1)
    found: NDArray[np.int64] = head[rows, order]
    return found


class Fused:
    """The fused reciprocal ranks of a batch, and each product's strongest part."""

    def __init__(self, people: int, products: int, scoring: Scoring) -> None:
        self.score = np.zeros((people, products))
        self.strongest = np.zeros((people, products))
        self.source = np.full((people, products), -1, np.int64)
        self.scoring = scoring

    def add(
        self,
        people: NDArray[np.int64],
        columns: NDArray[np.int64],
        kept: NDArray[np.bool_],
        weight: float,
        source: NDArray[np.int64],
    ) -> None:
        """One ranking of ``people`` (a row each): its ``columns`` best first, ``kept`` those
        the guardrails keep, ``source`` what each part is said to come from."""
        if weight <= 0:
            return
        rank = np.cumsum(kept, axis=1) - 1
        kept = kept & (rank < self.scoring.depth)
        rows = np.broadcast_to(people[:, None], columns.shape)[kept]
        cols = columns[kept]
        part = weight / (self.scoring.fusion_k + rank[kept])
        self.score[rows, cols] += part
        stronger = part > self.strongest[rows, cols]
        self.strongest[rows[stronger], cols[stronger]] = part[stronger]
        self.source[rows[stronger], cols[stronger]] = source[kept][stronger]


def neighbour_scores(
    learned: Learned, memo: dict[Any, Any], weights: Sequence[Mapping[int, float]]
) -> NDArray[np.float64]:
    """Each person's neighbour score of every learned product (a row each), summed as
    :meth:`~surmesure.decide.recommend.learned.Learned.neighbours` sums one person's: one
    sparse product of the people's purchase weights by the similarity (each sum taken in the
    same order, so to the bit)."""
    n, people = len(learned.codes), len(weights)
    sizes = np.fromiter((len(w) for w in weights), np.int64, people)
    total = int(sizes.sum())
    rows = np.fromiter((j for w in weights for j in w), np.int64, total)
    w = np.fromiter((x for ws in weights for x in ws.values()), np.float64, total)
    indptr = np.concatenate(([0], np.cumsum(sizes)))
    bought = csr_matrix((w, rows, indptr), shape=(people, n))
    similarity = memo.get("batch-similarity")
    if similarity is None:
        similarity = memo["batch-similarity"] = learned.similarity.astype(np.float64)
    product = bought @ similarity
    return np.asarray(product.toarray(), np.float64)


def strongest(learned: Learned, memo: dict[Any, Any], weights: Mapping[int, float], j: int) -> int:
    """The bought product (its index) that weighs most in one person's neighbour score of
    product ``j``, the later in ``weights`` on a tie (as
    :meth:`~surmesure.decide.recommend.learned.Learned.neighbours` finds it)."""
    column: dict[int, float] | None = memo.get(("batch-column", j))
    if column is None:
        sim = memo.get("batch-csc")
        if sim is None:
            sim = memo["batch-csc"] = learned.similarity.tocsc()
        at = slice(sim.indptr[j], sim.indptr[j + 1])
        column = memo[("batch-column", j)] = dict(
            zip(sim.indices[at].tolist(), sim.data[at].tolist(), strict=True)
        )
    best, found = -np.inf, -1
    for i, weight in weights.items():
        value = column.get(i)
        if value is not None and weight * value >= best:
            best, found = weight * value, i
    return found
