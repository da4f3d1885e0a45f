"""The products of many people at once, vectorised: what
:func:`~surmesure.decide.recommend.service.recommend_known` gives each of them, one array
operation for the whole set instead of a few hundred dictionary steps a person.

It covers the people the learned signals rank (:mod:`~surmesure.decide.recommend.learned`:
a model that learned them, and a person with a purchase of a product they know): their
neighbours' scores are summed for everyone in one ``bincount`` (in the order one person's
sum takes, so each score is the same to the bit), their tastes are ranked side by side, and
each list (neighbours, tastes, the segment's priors) is filtered by the guardrails (stock at
the stores that serve the person, what they bought) and ranked with a cumulative sum; the
reciprocal ranks are fused in the order :func:`~surmesure.decide.recommend.scoring.fused_ranked`
adds them; when the model has a learned ranker (:mod:`~surmesure.decide.recommend.ranker`),
it scores everyone's candidates in one call and its order is fused with that one as one
person's is; then the first ``k`` are taken under the category cap, best first, ties by
product code. Anyone else (no learned signals, a visitor, no purchase they know) is left to the
one-person path: :func:`pick_many` gives ``None`` for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from surmesure.decide.recommend import guardrails
from surmesure.decide.recommend.guardrails import Policy, Stock
from surmesure.decide.recommend.ranker import Plain, blend
from surmesure.decide.recommend.scoring import Candidate, Scoring

if TYPE_CHECKING:
    from surmesure.decide.recommend.learned import Learned
    from surmesure.decide.recommend.model import Model
    from surmesure.decide.recommend.people import PersonData
    from surmesure.decide.recommend.service import Recommendation

Wish = tuple["PersonData | None", "str | None", "NDArray[np.float32] | None"]
"""A person to recommend for: what was read of them, the store asked for, their fitted
tastes when handed over (see ``recommend_known``)."""


@dataclass(frozen=True)
class _Universe:
    """Every product a learned ranking may offer, sorted by code (so an index order is the
    code order ties are broken by), with the learned products' places in it."""

    codes: tuple[str, ...]
    index: Mapping[str, int]
    learned: NDArray[np.int64]
    #: each product's index among the learned ones (``-1``: not learned)
    place: NDArray[np.int64]
    #: the codes as an array
    array: NDArray[np.str_]


def _universe(model: Model, learned: Learned) -> _Universe:
    found: _Universe | None = model.memo.get("batch-universe")
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
        found = model.memo["batch-universe"] = _Universe(
            ordered, index, places, place, np.asarray(ordered)
        )
    return found


def _allowed(
    model: Model, stock: Stock, universe: _Universe, stores: tuple[str, ...]
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


def _ordered(
    scores: NDArray[np.floating], depths: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Each row's best ``depths`` columns, highest score first, ties by column (the learned
    rankings' order), and which of the returned places are within the row's depth."""
    n = scores.shape[1]
    m = int(min(depths.max(), n))
    negative = -scores
    head = (
        np.argpartition(negative, m - 1, axis=1)[:, :m]
        if m < n
        else np.tile(np.arange(n), (len(scores), 1))
    )
    rows = np.arange(len(scores))[:, None]
    order = np.lexsort((head, negative[rows, head]), axis=1)
    best = head[rows, order]
    return best, np.arange(m)[None, :] < depths[:, None]


class _Fused:
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


def pick_many(
    model: Model,
    stock: Stock,
    wishes: Sequence[Wish],
    *,
    k: int = 10,
    per_category: int = 3,
    policy: Policy | None = None,
    scoring: Scoring | None = None,
) -> list[list[Recommendation] | None]:
    """Each person's top ``k`` products, as ``recommend_known`` gives them; ``None`` for the
    people it leaves to that one-person path (see the module)."""
    from surmesure.decide.recommend.service import NEIGHBOURS, TASTES, priors_of

    learned = model.learned
    out: list[list[Recommendation] | None] = [None] * len(wishes)
    chosen = (scoring or Scoring()).with_learned()
    if learned is None or chosen.association_weight > 0:
        return out
    universe = _universe(model, learned)
    hl = chosen.neighbour_half_life_days
    # who the learned signals rank: their purchase weights and their tastes
    taken: list[int] = []
    weights: list[dict[int, float]] = []
    tastes: list[NDArray[np.float32]] = []
    for i, (data, _, factors) in enumerate(wishes):
        if data is None or not data.purchases:
            continue
        w = learned.weights(data.purchases, model.as_of, hl)
        t = learned.taste_scores(data.person_id, data.purchases, factors)
        if t is None:  # no purchase of a product the signals know: the one-person path
            continue
        taken.append(i)
        weights.append(w)
        tastes.append(t)
    if not taken:
        return out
    people = len(taken)
    datas = [wishes[i][0] for i in taken]
    depths = np.array(
        [chosen.depth + len({c for _, c in d.purchases}) for d in datas if d is not None], np.int64
    )
    neighbours, antecedents = _neighbour_scores(learned, weights)
    columns, within = _ordered(neighbours, depths)
    within &= np.take_along_axis(neighbours, columns, axis=1) > 0
    taste_scores = np.vstack(tastes)
    taste_columns, taste_within = _ordered(taste_scores, depths)
    width = len(universe.codes)
    banned = np.zeros((people, width), np.bool_)
    allowing = np.empty((people, width), np.bool_)
    chosen_policy = policy or Policy()
    for row, (i, data) in enumerate(zip(taken, datas, strict=True)):
        assert data is not None
        for code in guardrails.already_bought(
            data.purchases, model.as_of, chosen_policy, model.products
        ):
            j = universe.index.get(code)
            if j is not None:
                banned[row, j] = True
        stores = guardrails.serving_stores(data.home_store, wishes[i][1])
        allowing[row] = _allowed(model, stock, universe, stores)
    keep = allowing & ~banned
    fused = _Fused(people, width, chosen)
    everyone = np.arange(people)
    # the priors first, segment by segment (a part is said to come from prior -2 - place)
    segments: dict[str | None, list[int]] = {}
    for row, data in enumerate(datas):
        assert data is not None
        segments.setdefault(data.segment, []).append(row)
    names: dict[str | None, list[tuple[str, str]]] = {}
    for segment, rows in segments.items():
        priors = names[segment] = priors_of(model, segment, True)
        if not priors:
            continue
        at = np.fromiter((universe.index[c] for c, _ in priors), np.int64, len(priors))
        who = np.asarray(rows, np.int64)
        cols = np.broadcast_to(at, (len(who), len(at)))
        source = np.broadcast_to(-2 - np.arange(len(at)), cols.shape)
        fused.add(who, cols, keep[who[:, None], cols], chosen.prior_weight, source)
    cols = universe.learned[columns]
    fused.add(everyone, cols, within & keep[everyone[:, None], cols], chosen.neighbour_weight,
              np.zeros_like(cols))  # fmt: skip
    cols = universe.learned[taste_columns]
    fused.add(everyone, cols, taste_within & keep[everyone[:, None], cols], chosen.taste_weight,
              np.full_like(cols, -1))  # fmt: skip
    first = 4 * k * max(1, 4 // per_category) + 8
    learned_scores = None
    if model.ranker is not None:  # the learned ranker's scores of everyone's candidates at once
        lists = [
            (data, _lists(universe, row, (neighbours, columns, within),
                          (taste_scores, taste_columns, taste_within), names[data.segment]))
            for row, data in enumerate(datas) if data is not None
        ]  # fmt: skip
        learned_scores = model.ranker.scores(model, lists)
    for row, i in enumerate(taken):
        data = datas[row]
        assert data is not None
        score = fused.score[row]
        if learned_scores is not None:  # the ranker's order fused with this one
            present = np.flatnonzero(score > 0)
            codes = universe.array[present]
            theirs = learned_scores[row]
            blended = np.zeros_like(score)
            blended[present] = blend(
                codes, score[present], np.array([theirs.get(c, -1.0) for c in codes.tolist()])
            )
            score = blended
        top = _capped(model, universe, score, first, per_category, k)
        picked = []
        for j in top:
            came = int(fused.source[row, j])
            if came == 0:
                strongest = antecedents[row, universe.place[j]]
                prior, because = NEIGHBOURS, learned.codes[int(strongest)]
            elif came == -1:
                prior, because = TASTES, None
            else:
                prior, because = names[data.segment][-2 - came][1], None
            picked.append(Candidate(universe.codes[j], float(score[j]), because, prior))
        out[i] = [_made(model, c) for c in picked]
    return out


Ranking = tuple[NDArray[np.floating], NDArray[np.int64], NDArray[np.bool_]]


def _lists(
    universe: _Universe,
    row: int,
    neighbours: Ranking,
    tastes: Ranking,
    priors: list[tuple[str, str]],
) -> Plain:
    """One person's ranked lists as the one-person path ranks them, for the learned ranker:
    each ranking's scores, its columns best first and those within its depth."""
    ranked = []
    for scores, columns, within in (neighbours, tastes):
        cols = columns[row][within[row]]
        codes = universe.array[universe.learned[cols]].tolist()
        ranked.append(list(zip(codes, scores[row, cols].tolist(), strict=True)))
    return Plain([(c, s, "") for c, s in ranked[0]], ranked[1], priors)


def _made(model: Model, candidate: Candidate) -> Recommendation:
    from surmesure.decide.recommend.service import _recommendation

    return _recommendation(model, candidate)


def _neighbour_scores(
    learned: Learned, weights: Sequence[Mapping[int, float]]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Each person's neighbour score of every learned product (a row each), summed as
    :meth:`~surmesure.decide.recommend.learned.Learned.neighbours` sums one person's, and a
    the bought product that weighs most in each candidate (its index, ``-1``: none)."""
    n, people = len(learned.codes), len(weights)
    sizes = np.fromiter((len(w) for w in weights), np.int64, people)
    rows = np.fromiter((j for w in weights for j in w), np.int64, int(sizes.sum()))
    w = np.fromiter((x for ws in weights for x in ws.values()), np.float64, int(sizes.sum()))
    owner = np.repeat(np.arange(people), sizes)
    sim = learned.similarity
    starts, ends = sim.indptr[rows], sim.indptr[rows + 1]
    lengths = ends - starts
    flat = np.repeat(ends - np.cumsum(lengths), lengths) + np.arange(lengths.sum())
    key = np.repeat(owner, lengths) * n + sim.indices[flat]
    parts = sim.data[flat] * np.repeat(w, lengths)
    scores = np.bincount(key, weights=parts, minlength=people * n).astype(np.float64, copy=False)
    largest = np.zeros(people * n)
    np.maximum.at(largest, key, parts)
    held = parts == largest[key]
    strongest = np.full(people * n, -1, np.int64)
    strongest[key[held]] = np.repeat(rows, lengths)[held]
    return scores.reshape(people, n), strongest.reshape(people, n)


def _capped(
    model: Model,
    universe: _Universe,
    score: NDArray[np.float64],
    first: int,
    per_category: int,
    k: int,
) -> list[int]:
    """The first ``k`` products under the cap by score then code (the best ``first`` looked
    at first, all of them when the cap leaves fewer than ``k`` there)."""
    present = np.flatnonzero(score > 0)
    if present.size > first:
        threshold = -np.partition(-score[present], first - 1)[first - 1]
        head = present[score[present] >= threshold]
    else:
        head = present
    top: list[str] = []
    for looked in (head, present):
        ranked = sorted(zip((-score[looked]).tolist(), looked.tolist(), strict=True))
        codes = (universe.codes[j] for _, j in ranked)
        top = guardrails.cap_per_category(codes, model.products, per_category, k)
        if len(top) >= k:
            break
    return [universe.index[code] for code in top]
