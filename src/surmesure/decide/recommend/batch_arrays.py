"""The arrays :mod:`~surmesure.decide.recommend.batch` ranks many people with: the products a
learned ranking may offer, their verdicts of stock and category, everyone's neighbour scores
summed at once, each row's best products laid flat, and the fused reciprocal ranks of each
row's candidates."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


@dataclass(frozen=True)
class Listed:
    """A learned ranking of many rows laid flat: each row's best learned products in one run
    of entries, best first (ties by index), as deep as the row's depth and no deeper (a
    ranking of neighbours keeps its positive scores only). The runs come in no particular
    order of rows."""

    #: each entry's row
    rows: NDArray[np.int64]
    #: each entry's learned product (its index among the learned products)
    places: NDArray[np.int64]
    #: each entry's score
    values: NDArray[np.floating]
    #: the index of the first entry of each entry's run
    first: NDArray[np.int64]


def ordered(
    scores_of: Callable[[NDArray[np.int64]], NDArray[np.floating]],
    depths: NDArray[np.int64],
    width: int,
    positive: bool = False,
) -> Listed:
    """Each row's best ``depths`` of ``width`` learned products by ``scores_of(rows)`` (a
    dense row of scores each), highest first, ties by index. Rows of like depth are sorted
    together (:data:`ROWS_SORTED`), each group only as deep as its deepest row: a few heavy
    buyers do not make everyone's sort as long as theirs, and no row is kept past its depth.
    ``positive``: scores of zero or less are left out."""
    rows, places, values = [], [], []
    by_depth = np.argsort(depths, kind="stable")
    for group in np.array_split(by_depth, max(1, len(by_depth) // ROWS_SORTED)):
        if not group.size:
            continue
        scores = scores_of(group)
        deep = int(min(depths[group].max(), width))
        best = _best(scores, deep)
        found = np.take_along_axis(scores, best, axis=1)
        within = np.arange(deep)[None, :] < depths[group][:, None]
        if positive:
            within &= found > 0
        rows.append(np.broadcast_to(group[:, None], best.shape)[within])
        places.append(best[within])
        values.append(found[within])
    if not rows:
        empty = np.zeros(0, np.int64)
        return Listed(empty, empty, np.zeros(0), empty)
    row = np.concatenate(rows)
    return Listed(row, np.concatenate(places), np.concatenate(values), run_starts(row))


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


def run_starts(rows: NDArray[np.int64]) -> NDArray[np.int64]:
    """The index of the first entry of each entry's run of equal ``rows`` (each row's
    entries together)."""
    starts = np.flatnonzero(np.diff(rows, prepend=-1))
    found: NDArray[np.int64] = np.repeat(starts, np.diff(np.append(starts, rows.size)))
    return found


def run_places(kept: NDArray[np.bool_], first: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each entry's place among the ``kept`` entries of its run (``first``: the index of each
    entry's run's first entry): the kept entries before it in its run."""
    counted = np.zeros(kept.size + 1, np.int64)
    np.cumsum(kept, out=counted[1:])
    found: NDArray[np.int64] = counted[1:] - counted[first] - 1
    return found


@dataclass(frozen=True)
class Part:
    """One ranking's entries that count in the fusion: their row, universe column, rank
    among what the guardrails kept, and what each is said to come from."""

    rows: NDArray[np.int64]
    columns: NDArray[np.int64]
    ranks: NDArray[np.int64]
    source: NDArray[np.int64]
    weight: float


@dataclass(frozen=True)
class Fused:
    """The fused reciprocal ranks of a block: each product a part reached in a row (``row *
    width + column``, ascending: each row's products in code order), its score and its
    strongest part's source."""

    keys: NDArray[np.int64]
    score: NDArray[np.float64]
    source: NDArray[np.int64]


def fuse(parts: Sequence[Part], width: int, scoring: Scoring) -> Fused:
    """The rankings' reciprocal ranks summed per row and product, in the order the parts
    come (as one person's are added, so each sum is the same to the bit); a product's source
    is that of its strongest part, the first on a tie."""
    kept = [p for p in parts if p.weight > 0]
    if not kept:
        return Fused(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    # each entry's key followed by its part's number: all distinct, so that a quick sort
    # keeps a key's parts in the parts' order
    key = np.concatenate([(p.rows * width + p.columns) * len(kept) + i for i, p in enumerate(kept)])
    share = np.concatenate([p.weight / (scoring.fusion_k + p.ranks) for p in kept])
    source = np.concatenate([p.source for p in kept])
    order = np.argsort(key)
    key, share, source = key[order] // len(kept), share[order], source[order]
    starts = np.flatnonzero(np.diff(key, prepend=-1))
    if not starts.size:
        return Fused(key, share, source)
    # each key's parts added left to right (``add.reduceat`` would add the later ones first)
    sizes = np.diff(np.append(starts, key.size))
    score, best, strongest = share[starts], share[starts], starts.copy()
    for offset in range(1, int(sizes.max())):
        more = np.flatnonzero(sizes > offset)
        at = starts[more] + offset
        score[more] += share[at]
        stronger = share[at] > best[more]
        best[more[stronger]], strongest[more[stronger]] = share[at[stronger]], at[stronger]
    return Fused(key[starts], score, source[strongest])


def neighbour_scores(learned: Learned, memo: dict[Any, Any], weights: csr_matrix) -> csr_matrix:
    """Each person's neighbour score of the learned products (a row each, only those some
    purchase leads to), summed as :meth:`~surmesure.decide.recommend.learned.Learned.
    neighbours` sums one person's: one sparse product of the people's purchase ``weights``
    (:mod:`~surmesure.decide.recommend.batch_bought`, each row's entries in the one-person
    order) by the similarity (each sum taken in the same order, so to the bit)."""
    similarity = memo.get("batch-similarity")
    if similarity is None:
        similarity = memo["batch-similarity"] = learned.similarity.astype(np.float64)
    product: csr_matrix = weights @ similarity
    return product


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
