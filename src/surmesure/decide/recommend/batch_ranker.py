"""The learned ranker's scores of a whole batch of people at once, from the batch's arrays
(:mod:`~surmesure.decide.recommend.batch`): the features
:func:`~surmesure.decide.recommend.ranker.features` computes of one person's lists, computed
for every row with numpy, so the probabilities are those of the one-person path to the bit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from surmesure.decide.recommend.batch_arrays import run_places
from surmesure.decide.recommend.forest import BLOCK
from surmesure.decide.recommend.ranker import (
    ABSENT,
    DEPTH,
    NAMES,
    PER_PERSON,
    PER_PRODUCT,
    Ranker,
    product_leaves,
)

if TYPE_CHECKING:
    from surmesure.decide.recommend.batch_arrays import Listed, Universe
    from surmesure.decide.recommend.batch_bought import Bought
    from surmesure.decide.recommend.model import Model

PLACES = tuple(NAMES.index(n) for n in ("nb_place", "ta_place", "pr_place", "fused"))
GROUPS = (PER_PERSON, PER_PRODUCT, PLACES)


@dataclass(frozen=True)
class Bridge:
    """The universe's products in the ranker's catalogue (``-1``: not in it)."""

    catalogue: NDArray[np.int64]


def bridge(model: Model, ranker: Ranker, universe: Universe) -> Bridge:
    key = ("batch-bridge", id(ranker))
    found: Bridge | None = model.memo.get(key)
    if found is None:
        index = ranker.catalogue.index
        at = np.fromiter((index.get(c, -1) for c in universe.codes), np.int64, len(universe.codes))
        found = model.memo[key] = Bridge(at)
    return found


def scores(
    model: Model,
    ranker: Ranker,
    universe: Universe,
    bought: Bought,
    neighbours: Listed,
    tastes: Listed,
    priors: Sequence[NDArray[np.int64]],
    wanted: NDArray[np.int64],
) -> NDArray[np.float64]:
    """The ranker's probability of each ``wanted`` product of a row (``row * len(universe.
    codes) + its column``, ascending; a row a person, a column a product of ``universe``;
    ``-1``: not a candidate). ``bought``: what the rows bought (:mod:`~surmesure.decide.
    recommend.batch_bought`). ``neighbours``, ``tastes``: the rows' learned rankings
    (:class:`~surmesure.decide.recommend.batch_arrays.Listed`). ``priors``: each row's prior
    ranking, as universe columns best first (a segment's list, shared by its rows). A
    candidate's features are its places among all of them, wanted or not."""
    width = len(universe.codes)
    to_cat = bridge(model, ranker, universe).catalogue
    per_person = bought.per_person
    entries = [_learned(universe, bought.bought, neighbours),
               _learned(universe, bought.bought, tastes)]  # fmt: skip
    entries.append(_priors(to_cat, bought.bought, priors))
    # each wanted product's place in ``wanted``, looked up by key (-1: not wanted)
    slot = np.full(len(per_person) * width, -1, np.int32)
    slot[wanted] = np.arange(wanted.size, dtype=np.int32)
    # the features the forest's leaves are not found by product or person beforehand
    x = np.zeros((wanted.size, len(NAMES)))
    x[:, [0, 2, 4]] = ABSENT
    scored = np.zeros(wanted.size, np.bool_)
    for (who, col, place, rel), (p_col, r_col) in zip(
        entries, ((0, 1), (2, 3), (4, None)), strict=True
    ):
        at = slot[who * width + col]
        ok = at >= 0
        at = at[ok]
        scored[at] = True
        x[at, p_col] = place[ok]
        if r_col is not None:
            x[at, r_col] = rel[ok]
    found = np.full(wanted.size, -1.0)
    if not scored.any():
        return found
    x = x[scored]
    x[:, 10] = 1 / (10 + x[:, 0]) + 1 / (10 + x[:, 2]) + 0.5 / (10 + x[:, 4])
    rows, cols = np.divmod(wanted[scored], width)
    found[scored] = _probabilities(model, ranker, x, rows, to_cat[cols], per_person)
    return found


def _probabilities(
    model: Model,
    ranker: Ranker,
    x: NDArray[np.float64],
    rows: NDArray[np.int64],
    products: NDArray[np.int64],
    per_person: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The forest's probability of each row of ``x`` (its person's row in ``per_person``,
    its product in the catalogue), as :meth:`Forest.predict_proba` gives it: the leaves left
    by a product's features are found once a model, by a person's once a call, by the places
    once a distinct combination of them, and ANDed for each row."""
    forest = ranker.classifier
    raw = np.full(x.shape[0], forest.baseline)
    tables = forest.leaf_tables()
    by_product = product_leaves(model, ranker)
    by_person = tables.left(PER_PERSON, per_person)
    places = list(PLACES)
    # the distinct places by number first, then by the thresholds they fall between
    first, by_combination = _combinations(x)
    _, some, by_key = np.unique(
        tables.key(places, x[first][:, places]), return_index=True, return_inverse=True
    )
    of_places = tables.left(places, x[first[some]][:, places])
    by_places = by_key[by_combination]
    covered = PER_PERSON + PER_PRODUCT + PLACES
    for start in range(0, x.shape[0], BLOCK):
        at = slice(start, start + BLOCK)
        known = by_product[products[at]] & by_person[rows[at]]
        known &= of_places[by_places[at]]
        tables.add_leaves(x[at], raw[at], known=(known, covered))
    found: NDArray[np.float64] = expit(raw)
    return found


def _combinations(x: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """A row of each distinct combination of places (each a whole number below
    :data:`DEPTH`, or :data:`ABSENT`; the fused feature follows from them) and each row's
    combination, numbered: one number a combination, looked up in a table, not sorted."""
    side = DEPTH + 1
    key = np.zeros(x.shape[0], np.int64)
    for column in (PLACES[0], PLACES[1], PLACES[2]):
        place = x[:, column].astype(np.int64)
        key = key * side + np.where(place == ABSENT, DEPTH, place)
    seen = np.zeros(side**3, np.bool_)
    seen[key] = True
    combinations = np.flatnonzero(seen)
    number = np.empty(side**3, np.int64)  # (read only where written)
    number[combinations] = np.arange(combinations.size)
    by_row = number[key]
    first = np.empty(combinations.size, np.int64)
    first[by_row] = np.arange(x.shape[0])
    return first, by_row


def _learned(
    universe: Universe, bought: NDArray[np.bool_], ranking: Listed
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """``(row, universe column, place, relative score)`` of the first :data:`DEPTH` of a
    learned ranking each row did not buy."""
    cols = universe.learned[ranking.places]
    ok = ~bought.ravel()[ranking.rows * bought.shape[1] + cols]
    place = run_places(ok, ranking.first)
    ok &= place < DEPTH
    found = ranking.values.astype(np.float64)
    # each row's first kept score, the scale of its others (1 when not positive)
    head = ok & (place == 0)
    top = np.ones(bought.shape[0])
    top[ranking.rows[head]] = np.where(found[head] > 0, found[head], 1.0)
    who = ranking.rows[ok]
    return who, cols[ok], place[ok].astype(np.float64), found[ok] / top[who]


def _priors(
    to_cat: NDArray[np.int64], bought: NDArray[np.bool_], priors: Sequence[NDArray[np.int64]]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """The same of each row's prior ranking, those in the ranker's catalogue only."""
    parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
    groups: dict[int, list[int]] = {}
    lists: dict[int, NDArray[np.int64]] = {}
    for r, at in enumerate(priors):
        groups.setdefault(id(at), []).append(r)
        lists[id(at)] = at
    for key, members in groups.items():
        at = lists[key]
        at = at[to_cat[at] >= 0]
        who = np.asarray(members, np.int64)
        longest = int(bought[who].sum(axis=1).max(initial=0)) + DEPTH
        at = at[:longest]
        ok = ~bought[who[:, None], at[None, :]]
        place = np.cumsum(ok, axis=1) - 1
        ok &= place < DEPTH
        parts.append(
            (np.broadcast_to(who[:, None], ok.shape)[ok], np.broadcast_to(at, ok.shape)[ok],
             place[ok].astype(np.float64))
        )  # fmt: skip
    if not parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0), np.zeros(0)
    who = np.concatenate([p[0] for p in parts])
    return who, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]), \
        np.zeros(who.size)  # fmt: skip
