"""The products of many people at once, vectorised: what
:func:`~surmesure.decide.recommend.service.recommend_known` gives each of them, one array
operation for the whole set instead of a few hundred dictionary steps a person.

It covers the people the learned signals rank (:mod:`~surmesure.decide.recommend.learned`:
a model that learned them, and a person with a purchase of a product they know): their
neighbours' scores are summed for everyone in one sparse product (in the order one person's
sum takes, so each score is the same to the bit), each one's neighbours and tastes are
ranked side by side as deep as their depth and laid flat, a run of entries a person
(:class:`~surmesure.decide.recommend.batch_arrays.Listed`), and each list (neighbours,
tastes, the segment's priors) is filtered by the guardrails (stock at the stores that serve
the person, what they bought) and ranked with a cumulative sum; the reciprocal ranks are
fused in the order :func:`~surmesure.decide.recommend.scoring.fused_ranked` adds them. From
there on a block works on each person's candidates alone (some 300 entries, not rows as wide
as the catalogue): when the model has a learned ranker (:mod:`~surmesure.decide.recommend.
ranker`), it scores in one call everyone's candidates among each one's first ``KEEP`` by that
fusion, and its order is fused with that one for the whole block at once, as one person's
is; then the first ``k`` are taken under the category cap, best first, ties by product code.
Anyone else (no learned signals, a visitor, no purchase they know) is left to the one-person
path: :func:`pick_many` gives ``None`` for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from surmesure.decide.recommend import batch_ranker, guardrails
from surmesure.decide.recommend.batch_arrays import (
    Part,
    Universe,
    allowed,
    fuse,
    neighbour_scores,
    ordered,
    run_places,
    run_starts,
    strongest,
    universe_of,
)
from surmesure.decide.recommend.batch_bought import bought_of
from surmesure.decide.recommend.guardrails import Policy, Stock
from surmesure.decide.recommend.ranker import KEEP, blend, places_in_rows, places_today
from surmesure.decide.recommend.scoring import Candidate, Scoring

if TYPE_CHECKING:
    from surmesure.decide.recommend.model import Model
    from surmesure.decide.recommend.people import PersonData
    from surmesure.decide.recommend.service import Recommendation

Wish = tuple["PersonData | None", "str | None", "NDArray[np.float32] | None"]
"""A person to recommend for: what was read of them, the store asked for, their fitted
tastes when handed over (see ``recommend_known``)."""


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
    learned = model.learned
    out: list[list[Recommendation] | None] = [None] * len(wishes)
    chosen = (scoring or Scoring()).with_learned()
    if learned is None or chosen.association_weight > 0:
        return out
    universe = universe_of(model, learned)
    # who the learned signals rank, and their tastes
    taken: list[int] = []
    tastes: list[NDArray[np.float32]] = []
    for i, (data, _, factors) in enumerate(wishes):
        if data is None or not data.purchases:
            continue
        t = learned.taste_scores(data.person_id, data.purchases, factors)
        if t is None:  # no purchase of a product the signals know: the one-person path
            continue
        taken.append(i)
        tastes.append(t)
    if not taken:
        return out
    people = len(taken)
    datas = [data for i in taken if (data := wishes[i][0]) is not None]
    chosen_policy = policy or Policy()
    bought = bought_of(model, universe, datas, chosen.neighbour_half_life_days, chosen_policy)
    depths = chosen.depth + bought.products
    n, width = len(learned.codes), len(universe.codes)
    product = neighbour_scores(learned, model.memo, bought.weights)
    neighbours = ordered(lambda rows: product[rows].toarray(), depths, n, positive=True)
    taste_scores = np.vstack(tastes)
    taste_list = ordered(taste_scores.__getitem__, depths, n)
    stores = [
        guardrails.serving_stores(d.home_store, wishes[i][1])
        for d, i in zip(datas, taken, strict=True)
    ]
    keep = _keep(model, stock, universe, stores, bought.banned).ravel()
    names: dict[str | None, list[tuple[str, str]]] = {}
    prior_columns: dict[str | None, NDArray[np.int64]] = {}
    parts = _prior_parts(model, universe, datas, keep, chosen, names, prior_columns)
    for listed, weight, source in (
        (neighbours, chosen.neighbour_weight, 0), (taste_list, chosen.taste_weight, -1)
    ):  # fmt: skip
        cols = universe.learned[listed.places]
        kept = keep[listed.rows * width + cols]
        rank = run_places(kept, listed.first)
        kept &= rank < chosen.depth
        parts.append(Part(listed.rows[kept], cols[kept], rank[kept], np.full(int(kept.sum()),
                          source), weight))  # fmt: skip
    fused = fuse(parts, width, chosen)
    who, what = np.divmod(fused.keys, width)
    scores = fused.score
    if model.ranker is not None:  # the ranker's order fused with today's, the block at once
        mine = places_today(who, scores)  # (each row's columns in code order)
        counts = mine < KEEP
        theirs = np.full(who.size, -1.0)
        theirs[counts] = batch_ranker.scores(
            model, model.ranker, universe, bought, neighbours, taste_list,
            [prior_columns[d.segment] for d in datas], fused.keys[counts],
        )  # fmt: skip
        scores = blend(who, scores, theirs, mine)
    first = 4 * k * max(1, 4 // per_category) + 8
    chosen_at = _tops(model, universe, who, what, scores, first, per_category, k)
    owner, cols, came = who[chosen_at], what[chosen_at], fused.source[chosen_at]
    sizes = np.bincount(owner, minlength=people)
    led = came == 0
    because = np.full(cols.size, -1, np.int64)
    because[led] = strongest(
        learned, model.memo, bought.weights, owner[led], universe.place[cols[led]]
    )
    made = Made(model, universe, names)
    items = iter(
        zip(cols.tolist(), scores[chosen_at].tolist(), came.tolist(), because.tolist(), strict=True)
    )
    for row, i in enumerate(taken):
        segment = datas[row].segment
        out[i] = [made.recommendation(segment, *item) for item in islice(items, sizes[row])]
    return out


def _keep(
    model: Model,
    stock: Stock,
    universe: Universe,
    stores: Sequence[tuple[str, ...]],
    banned: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """What the guardrails let each row be offered: stock and category at the stores that
    serve it (the same for everyone they serve), and not ``banned``."""
    distinct: dict[tuple[str, ...], int] = {}
    group = np.fromiter((distinct.setdefault(s, len(distinct)) for s in stores), np.int64,
                        len(stores))  # fmt: skip
    allowing = np.vstack([allowed(model, stock, universe, s) for s in distinct])
    found: NDArray[np.bool_] = allowing[group]
    found &= ~banned
    return found


def _prior_parts(
    model: Model,
    universe: Universe,
    datas: Sequence[PersonData],
    keep: NDArray[np.bool_],
    scoring: Scoring,
    names: dict[str | None, list[tuple[str, str]]],
    prior_columns: dict[str | None, NDArray[np.int64]],
) -> list[Part]:
    """Each segment's priors, kept by ``keep`` (rows x universe columns, laid flat) to the
    depth: a part of the fusion a segment, each entry said to come from prior ``-2 - its
    place``. ``names`` and ``prior_columns`` are given each segment's priors."""
    from surmesure.decide.recommend.service import priors_of

    width = len(universe.codes)
    segments: dict[str | None, list[int]] = {}
    for row, data in enumerate(datas):
        segments.setdefault(data.segment, []).append(row)
    parts: list[Part] = []
    for segment, rows in segments.items():
        priors = names[segment] = priors_of(model, segment, True)
        at = prior_columns[segment] = _prior_columns(model, universe, segment, priors)
        if not priors:
            continue
        who = np.asarray(rows, np.int64)
        # the priors only as far as every row's depth: what any row keeps past it counts not
        length = min(at.size, 2 * scoring.depth)
        kept = keep[who[:, None] * width + at[None, :length]]
        while length < at.size and int(kept.sum(axis=1).min()) < scoring.depth:
            length = min(at.size, 2 * length)
            kept = keep[who[:, None] * width + at[None, :length]]
        rank = np.cumsum(kept, axis=1) - 1
        kept &= rank < scoring.depth
        place = np.broadcast_to(np.arange(length), kept.shape)[kept]
        parts.append(
            Part(np.broadcast_to(who[:, None], kept.shape)[kept], at[place], rank[kept],
                 -2 - place, scoring.prior_weight)
        )  # fmt: skip
    return parts


def _prior_columns(
    model: Model, universe: Universe, segment: str | None, priors: list[tuple[str, str]]
) -> NDArray[np.int64]:
    """A segment's prior ranking as universe columns, best first (once a model)."""
    key = ("batch-prior-columns", segment)
    found: NDArray[np.int64] | None = model.memo.get(key)
    if found is None:
        found = model.memo[key] = np.fromiter(
            (universe.index[c] for c, _ in priors), np.int64, len(priors)
        )
    return found


class Made:
    """The recommendations of universe columns, each product's facts and each reason made
    once a block (as :func:`~surmesure.decide.recommend.service._recommendation` makes them)."""

    def __init__(
        self, model: Model, universe: Universe, names: dict[str | None, list[tuple[str, str]]]
    ) -> None:
        from surmesure.decide.recommend.service import Recommendation

        self.model, self.universe, self.names = model, universe, names
        self.reasons: dict[tuple[str | None, int, int], str] = {}
        self.made = Recommendation
        facts = model.memo.get("batch-facts")
        if facts is None:
            facts = model.memo["batch-facts"] = [
                (c, None, None, None) if (p := model.products.get(c)) is None
                else (c, p.name, p.category, p.price)
                for c in universe.codes
            ]  # fmt: skip
        self.facts: list[tuple[str, str | None, str | None, float | None]] = facts

    def recommendation(
        self, segment: str | None, column: int, score: float, came: int, because: int
    ) -> Recommendation:
        """The item of ``column`` with its ``score``, its part ``came`` from (``0``: the
        neighbours, ``because`` the product that led there; ``-1``: the tastes; else the
        priors of ``segment``, at place ``-2 - came``)."""
        key = (segment if came < -1 else None, came, because)
        reason = self.reasons.get(key)
        if reason is None:
            from surmesure.decide.recommend.service import NEIGHBOURS, TASTES, _recommendation

            if came == 0:
                prior, led = NEIGHBOURS, self.model.learned.codes[because]  # type: ignore[union-attr]
            elif came == -1:
                prior, led = TASTES, None
            else:
                prior, led = self.names[segment][-2 - came][1], None
            found = _recommendation(self.model, Candidate("", 0.0, led, prior))
            reason = self.reasons[key] = found.reason
        code, name, category, price = self.facts[column]
        return self.made(code, name, category, price, score, reason)


def _tops(
    model: Model,
    universe: Universe,
    who: NDArray[np.int64],
    what: NDArray[np.int64],
    score: NDArray[np.float64],
    first: int,
    per_category: int,
    k: int,
) -> NDArray[np.int64]:
    """Each row's first ``k`` under the cap by score then code, best first, rows in order:
    their places in ``who``, ``what``, ``score`` (the rows ascending, each one's candidates
    in code order). Each row's best ``first`` are looked at first, all of its candidates when the
    cap leaves fewer than ``k`` there (the cap's first ``k`` of a prefix are those of the
    whole ranking when it finds ``k``)."""
    run = run_starts(who)
    ranked = np.empty(who.size, np.int64)
    ranked[run + places_in_rows(who, (-score,))] = np.arange(who.size)
    rows = who  # (the same rows, each one's candidates now best first)
    category = _category_ids(model, universe)[what[ranked]]
    taken = np.zeros(rows.size, np.bool_)
    looked = np.arange(rows.size) - run < first
    taken[looked] = _first_capped(rows[looked], category[looked], per_category, k)
    counts = np.bincount(rows[taken], minlength=int(rows.max(initial=-1)) + 1)
    short = (counts < k) & (np.bincount(rows, minlength=counts.size) > first)
    if short.any():
        looked = short[rows]
        taken[looked] = _first_capped(rows[looked], category[looked], per_category, k)
    found: NDArray[np.int64] = ranked[taken]
    return found


def _first_capped(
    rows: NDArray[np.int64], category: NDArray[np.int64], per_category: int, k: int
) -> NDArray[np.bool_]:
    """Which ranked entries (each row's together, best first; ``category``: ``-1`` for none)
    are among their row's first ``k`` with at most ``per_category`` of a category (as
    :func:`~surmesure.decide.recommend.guardrails.cap_per_category` takes them: an entry is
    taken when fewer than ``per_category`` of its category came before it in its row)."""
    ok = category < 0
    some = np.flatnonzero(~ok)
    if some.size:
        key = rows[some] * (int(category.max()) + 1) + category[some]
        by_key = np.argsort(key, kind="stable")
        seen = np.empty(some.size, np.int64)
        seen[by_key] = np.arange(some.size) - run_starts(key[by_key])
        ok[some] = seen < per_category
    taken: NDArray[np.bool_] = ok & (run_places(ok, run_starts(rows)) < k)
    return taken


def _category_ids(model: Model, universe: Universe) -> NDArray[np.int64]:
    """Each universe product's category as a number (``-1``: none, not capped)."""
    found: NDArray[np.int64] | None = model.memo.get("batch-category-ids")
    if found is None:
        products = model.products
        numbers: dict[str, int] = {}
        found = model.memo["batch-category-ids"] = np.fromiter(
            (
                -1 if (p := products.get(c)) is None or p.category is None
                else numbers.setdefault(p.category, len(numbers))
                for c in universe.codes
            ),
            np.int64,
            len(universe.codes),
        )  # fmt: skip
    return found
