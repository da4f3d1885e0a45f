"""The arrays :mod:`~surmesure.decide.recommend.batch` ranks many people with: the products a
learned ranking may offer, their verdicts of stock and category, each row's best columns, the
fused reciprocal ranks, and everyone's neighbour scores summed at once."""

from __future__ import annotations

from collections.abc import Mapping
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
    learned: Learned, memo: dict[Any, Any], weights: csr_matrix
) -> NDArray[np.float64]:
    """Each person's neighbour score of every learned product (a row each), summed as
    :meth:`~surmesure.decide.recommend.learned.Learned.neighbours` sums one person's: one
    sparse product of the people's purchase ``weights`` (:mod:`~surmesure.decide.recommend.
    batch_bought`, each row's entries in the one-person order) by the similarity (each sum
    taken in the same order, so to the bit)."""
    similarity = memo.get("batch-similarity")
    if similarity is None:
        similarity = memo["batch-similarity"] = learned.similarity.astype(np.float64)
    product = weights @ similarity
    return np.asarray(product.toarray(), np.float64)


def strongest(
    learned: Learned,
    memo: dict[Any, Any],
    weights: csr_matrix,
    rows: NDArray[np.int64],
    places: NDArray[np.int64],
) -> NDArray[np.int64]:
    """For each pair of a row of ``weights`` and a learned product (its index in
    ``places``), the bought product (its index) that weighs most in that row's neighbour
    score of it, the later in the row on a tie (as :meth:`~surmesure.decide.recommend.
    learned.Learned.neighbours` finds it); ``-1`` when nothing bought leads to it."""
    keys, values = _similarity_keys(learned, memo)
    n = len(learned.codes)
    # each pair's row of weights laid flat, by product (the similarities are then sought in
    # ascending order), each entry's place in its row kept for the ties
    counts = np.diff(weights.indptr)
    by_product = np.lexsort((weights.indices, np.repeat(np.arange(counts.size), counts)))
    starts, ends = weights.indptr[rows], weights.indptr[rows + 1]
    lengths = ends - starts
    pair = np.repeat(np.arange(rows.size), lengths)
    flat = by_product[np.repeat(ends - np.cumsum(lengths), lengths) + np.arange(int(lengths.sum()))]
    query = weights.indices[flat] * n + places[pair]
    at = np.searchsorted(keys, query)
    at[at == keys.size] = 0
    stored = keys[at] == query
    pair, flat, at = pair[stored], flat[stored], at[stored]
    part = weights.data[flat] * values[at]
    best = np.full(rows.size, -np.inf)
    np.maximum.at(best, pair, part)
    top = part == best[pair]
    latest = np.full(rows.size, -1, np.int64)
    np.maximum.at(latest, pair[top], flat[top])
    out = np.full(rows.size, -1, np.int64)
    some = latest >= 0
    out[some] = weights.indices[latest[some]]
    return out


def _similarity_keys(
    learned: Learned, memo: dict[Any, Any]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The similarity's stored pairs as ``row * products + column``, ascending, and their
    values (made once a model)."""
    found: tuple[NDArray[np.int64], NDArray[np.float64]] | None = memo.get("batch-sim-keys")
    if found is None:
        sim = learned.similarity.tocsr(copy=True)
        sim.sum_duplicates()  # (sorted, one value a pair)
        n = len(learned.codes)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(sim.indptr))
        found = memo["batch-sim-keys"] = (rows * n + sim.indices, sim.data)
    return found
