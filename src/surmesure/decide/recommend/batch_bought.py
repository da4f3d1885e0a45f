"""What a block of people bought, as arrays: one pass over their purchases gives all that
:mod:`~surmesure.decide.recommend.batch` and :mod:`~surmesure.decide.recommend.batch_ranker`
read of them, instead of a few loops over each person's purchases.

- each person's neighbour weights (:meth:`~surmesure.decide.recommend.learned.Learned.weights`:
  a distinct ``(order time, product)`` pair halves every half-life), a row each of a sparse
  matrix whose entries come in the order of the person's first purchase of each product, each
  summed in the order of the pairs' first purchase, so each weight, and each neighbour score
  summed from them, is the one-person path's to the bit;
- what the guardrails ban (:func:`~surmesure.decide.recommend.guardrails.already_bought`) and
  what the ranker counts as bought (everything), as universe columns;
- how many distinct products each person bought (the depth of their learned lists) and the
  ranker's per-person features (products, days since the last and the first purchase, orders).

Times are counted in whole microseconds (what a ``datetime`` holds), so the ages and days
are those ``datetime`` arithmetic gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from surmesure.decide.recommend.guardrails import Policy

if TYPE_CHECKING:
    from surmesure.decide.recommend.batch_arrays import Universe
    from surmesure.decide.recommend.model import Model
    from surmesure.decide.recommend.people import PersonData

EPOCH = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)
DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class Bought:
    """A block's purchases (a row a person, a column a product of the universe)."""

    #: the neighbour weights, person x learned product (entries in first-purchase order)
    weights: csr_matrix
    #: products the guardrails may not offer again
    banned: NDArray[np.bool_]
    #: products ever bought
    bought: NDArray[np.bool_]
    #: distinct products bought (those outside the universe too)
    products: NDArray[np.int64]
    #: the ranker's per-person features: products, days since the last and the first
    #: purchase, distinct order times (zeros without a purchase)
    per_person: NDArray[np.float64]


def bought_of(
    model: Model,
    universe: Universe,
    datas: Sequence[PersonData],
    half_life_days: float,
    policy: Policy,
) -> Bought:
    """The arrays of ``datas``' purchases before ``model``'s date."""
    people, width = len(datas), len(universe.codes)
    sizes = np.fromiter((len(d.purchases) for d in datas), np.int64, people)
    codes = _code_ids(model, universe)
    get = codes.get
    ids = [get(code) for d in datas for _, code in d.purchases]
    if None in ids:  # products the universe lacks: numbered past it, once a model
        ids = [codes.setdefault(c, len(codes)) for d in datas for _, c in d.purchases]
    code = np.asarray(ids, np.int64)
    times: dict[datetime, int] = {}
    moment = np.asarray(
        [times.setdefault(t, len(times)) for d in datas for t, _ in d.purchases], np.int64
    )
    micros = np.fromiter(((t - EPOCH) // MICROSECOND for t in times), np.int64, len(times))
    row = np.repeat(np.arange(people), sizes)
    # the distinct (time, product) pairs of each person, in the order first bought (one
    # number a pair: its person, its time's and its product's numbers)
    span, moments = len(codes), max(len(times), 1)
    pair = (row * moments + moment) * span + code
    _, first = np.unique(pair, return_index=True)
    first.sort()
    orders = np.bincount(np.unique(pair // span) // moments, minlength=people)
    row, at, code = row[first], micros[moment[first]], code[first]
    now = (model.as_of - EPOCH) // MICROSECOND
    weights = _weights(model, universe, people, row, at, code, now, half_life_days)

    banned = np.zeros((people, width), np.bool_)
    window = policy.bought_window_days
    ban = code < width
    if window is not None:
        ban &= at >= now - window * DAY
    if policy.consumable_categories:
        ban[ban] = ~_consumable(model, universe, policy)[code[ban]]
    banned[row[ban], code[ban]] = True
    bought = np.zeros((people, width), np.bool_)
    inside = code < width
    bought[row[inside], code[inside]] = True

    products = np.bincount(np.unique(row * span + code) // span, minlength=people)
    per_person = np.zeros((people, 4))
    has = sizes > 0
    if has.any():
        starts = np.flatnonzero(np.diff(row, prepend=-1))  # (the rows come in order)
        last = np.maximum.reduceat(at, starts)
        earliest = np.minimum.reduceat(at, starts)
        per_person[has] = np.column_stack(
            (products[has], (now - last) // DAY, (now - earliest) // DAY, orders[has])
        )
    return Bought(weights, banned, bought, products, per_person)


def _weights(
    model: Model,
    universe: Universe,
    people: int,
    row: NDArray[np.int64],
    at: NDArray[np.int64],
    code: NDArray[np.int64],
    now: int,
    half_life_days: float,
) -> csr_matrix:
    """The neighbour weights of the distinct pairs ``(row, at, code)`` (first-bought order)."""
    learned = model.learned
    assert learned is not None
    width = len(universe.codes)
    place = np.full(code.size, -1, np.int64)
    inside = code < width
    place[inside] = universe.place[code[inside]]
    known = place >= 0
    row, at, place = row[known], at[known], place[known]
    # the age in days as ``timedelta.total_seconds() / 86400`` gives it, halved in Python
    # (one power a distinct age: the same float as the one-person path's)
    age = np.maximum((now - at) / 1e6 / 86_400.0, 0.0)
    ages, which = np.unique(age, return_inverse=True)
    halves = np.asarray([0.5 ** (a / half_life_days) for a in ages.tolist()], np.float64)
    n = len(learned.codes)
    key = row * n + place
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=halves[which], minlength=unique.size)
    ordered = np.argsort(first, kind="stable")  # each row's products in first-bought order
    key, sums = unique[ordered], sums[ordered]
    indptr = np.searchsorted(key // n, np.arange(people + 1), side="left")
    return csr_matrix((sums, key % n, indptr), shape=(people, n))


def _code_ids(model: Model, universe: Universe) -> dict[str, int]:
    """Each product's column in the universe (others numbered past it as they come)."""
    found: dict[str, int] | None = model.memo.get("batch-code-ids")
    if found is None:
        found = model.memo["batch-code-ids"] = dict(universe.index)
    return found


def _consumable(model: Model, universe: Universe, policy: Policy) -> NDArray[np.bool_]:
    """Which universe products are of a category ``policy`` lets be bought again."""
    key: Any = ("batch-consumable", policy.consumable_categories)
    found: NDArray[np.bool_] | None = model.memo.get(key)
    if found is None:
        products = model.products
        found = model.memo[key] = np.fromiter(
            (
                (p := products.get(c)) is not None and p.category in policy.consumable_categories
                for c in universe.codes
            ),
            np.bool_,
            len(universe.codes),
        )
    return found
