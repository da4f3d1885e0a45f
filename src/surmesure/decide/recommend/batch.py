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
it scores in one call everyone's candidates among each one's first ``KEEP`` by that fusion,
and its order is fused with that one for the whole block at once, as one person's is; then the
first ``k`` are taken under the category cap, best first, ties by product code. Anyone else
(no learned signals, a visitor, no purchase they know) is left to the one-person path:
:func:`pick_many` gives ``None`` for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from surmesure.decide.recommend import batch_ranker, guardrails
from surmesure.decide.recommend.batch_arrays import (
    Fused,
    Universe,
    allowed,
    neighbour_scores,
    ordered,
    strongest,
    universe_of,
)
from surmesure.decide.recommend.batch_bought import bought_of
from surmesure.decide.recommend.guardrails import Policy, Stock
from surmesure.decide.recommend.ranker import KEEP, blend, places_today
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
    from surmesure.decide.recommend.service import priors_of

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
    neighbours = neighbour_scores(learned, model.memo, bought.weights)
    columns, within = ordered(neighbours, depths)
    within &= np.take_along_axis(neighbours, columns, axis=1) > 0
    taste_scores = np.vstack(tastes)
    taste_columns, taste_within = ordered(taste_scores, depths)
    width = len(universe.codes)
    allowing = np.vstack(
        [
            allowed(model, stock, universe, guardrails.serving_stores(data.home_store, wish))
            for data, wish in zip(datas, (wishes[i][1] for i in taken), strict=True)
        ]
    )
    keep = allowing & ~bought.banned
    fused = Fused(people, width, chosen)
    everyone = np.arange(people)
    # the priors first, segment by segment (a part is said to come from prior -2 - place)
    segments: dict[str | None, list[int]] = {}
    for row, data in enumerate(datas):
        segments.setdefault(data.segment, []).append(row)
    names: dict[str | None, list[tuple[str, str]]] = {}
    prior_columns: dict[str | None, NDArray[np.int64]] = {}
    for segment, rows in segments.items():
        priors = names[segment] = priors_of(model, segment, True)
        at = prior_columns[segment] = _prior_columns(model, universe, segment, priors)
        if not priors:
            continue
        who = np.asarray(rows, np.int64)
        # the priors only as far as every row's depth: what any row keeps past it counts not
        length = min(at.size, 2 * chosen.depth)
        kept = keep[who[:, None], at[None, :length]]
        while length < at.size and int(kept.sum(axis=1).min()) < chosen.depth:
            length = min(at.size, 2 * length)
            kept = keep[who[:, None], at[None, :length]]
        cols = np.broadcast_to(at[:length], kept.shape)
        source = np.broadcast_to(-2 - np.arange(length), kept.shape)
        fused.add(who, cols, kept, chosen.prior_weight, source)
    cols = universe.learned[columns]
    fused.add(everyone, cols, within & keep[everyone[:, None], cols], chosen.neighbour_weight,
              np.zeros_like(cols))  # fmt: skip
    cols = universe.learned[taste_columns]
    fused.add(everyone, cols, taste_within & keep[everyone[:, None], cols], chosen.taste_weight,
              np.full_like(cols, -1))  # fmt: skip
    first = 4 * k * max(1, 4 // per_category) + 8
    scores = fused.score
    if model.ranker is not None:  # the ranker's order fused with today's, the block at once
        who, what = np.nonzero(scores > 0)
        today = scores[who, what]
        mine = places_today(who, today)  # (each row's columns in code order)
        counts = mine < KEEP
        theirs = np.full(who.size, -1.0)
        theirs[counts] = batch_ranker.scores(
            model, model.ranker, universe, bought,
            (neighbours, columns, within), (taste_scores, taste_columns, taste_within),
            [prior_columns[d.segment] for d in datas],
            who[counts] * scores.shape[1] + what[counts],
        )  # fmt: skip
        scores = np.zeros_like(scores)
        scores[who, what] = blend(who, today, theirs, mine)
    tops = [_capped(model, universe, scores[row], first, per_category, k) for row in everyone]
    sizes = np.fromiter((top.size for top in tops), np.int64, people)
    owner = np.repeat(everyone, sizes)
    cols = np.concatenate(tops)
    came = fused.source[owner, cols]
    led = came == 0
    because = np.full(cols.size, -1, np.int64)
    because[led] = strongest(
        learned, model.memo, bought.weights, owner[led], universe.place[cols[led]]
    )
    made = Made(model, universe, names)
    items = iter(
        zip(
            owner.tolist(), cols.tolist(), scores[owner, cols].tolist(), came.tolist(),
            because.tolist(), strict=True,
        )
    )  # fmt: skip
    for row, i in enumerate(taken):
        segment = datas[row].segment
        out[i] = [made.recommendation(segment, *item[1:]) for item in islice(items, sizes[row])]
    return out


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


def _capped(
    model: Model,
    universe: Universe,
    score: NDArray[np.float64],
    first: int,
    per_category: int,
    k: int,
) -> NDArray[np.int64]:
    """The first ``k`` products under the cap by score then code (the best ``first`` looked
    at first, all of them when the cap leaves fewer than ``k`` there)."""
    present = np.flatnonzero(score > 0)
    if present.size > first:
        values = score[present]
        threshold = -np.partition(-values, first - 1)[first - 1]
        head = present[values >= threshold]
    else:
        head = present
    capped = _categories(model, universe)
    for looked in (head, present):
        ranked = looked[np.lexsort((looked, -score[looked]))]
        if not capped[ranked].any():  # no product of a category: nothing is capped
            top = ranked[:k]
        else:
            codes = [universe.codes[j] for j in ranked.tolist()]
            found = guardrails.cap_per_category(codes, model.products, per_category, k)
            top = np.fromiter((universe.index[c] for c in found), np.int64, len(found))
        if top.size >= k:
            break
    return top


def _categories(model: Model, universe: Universe) -> NDArray[np.bool_]:
    """Which universe products have a category (the cap counts those only)."""
    found: NDArray[np.bool_] | None = model.memo.get("batch-categorised")
    if found is None:
        products = model.products
        found = model.memo["batch-categorised"] = np.fromiter(
            ((p := products.get(c)) is not None and p.category is not None for c in universe.codes),
            np.bool_,
            len(universe.codes),
        )
    return found
