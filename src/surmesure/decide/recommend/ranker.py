"""A learned ranker over a person's recommendation candidates, trained at model build.

The candidates are the first :data:`DEPTH` of the learned neighbours, the tastes and the
priors (what the person bought left out). Each is described by its place and relative score in
those lists, its place in "popular lately" and overall, the days since it first sold, the
person's number of products, orders, days since their last and first purchase, and today's
fused score: computed with numpy for many people at once (:func:`features`). Gradient boosting
learns which candidates people then bought for the first time, from the models of the
:data:`ANCHORS` month starts before the model's ``as_of`` (labels: first purchases from each
month start to ``as_of``, :data:`HORIZON_DAYS` at most; nothing at or after ``as_of``). Its
order is fused by rank with today's (``benchmarks/bench_recommend.py`` measures it ahead of
the best peer on every cut-off of Online Retail II). Its verdict counts for the first
:data:`KEEP` of today's ranking only (the rest come after them, in today's order), so only
those are scored. With fewer than :data:`MIN_MONTHS` months or :data:`MIN_PEOPLE` labelled
people there is no ranker and today's ranking stands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from surmesure.decide.recommend.forest import BLOCK, Forest
from surmesure.decide.recommend.people import People, PersonData

if TYPE_CHECKING:
    from surmesure.decide.recommend.model import Model

DEPTH = 100
ABSENT = 1000.0
ANCHORS = 3
HORIZON_DAYS = 90
MIN_MONTHS = 2
MIN_PEOPLE = 200
NEGATIVES = 0.25
TRAIN_BLOCK = 5_000
"""People whose candidates are made at once while the ranker trains (the rows and the draws of
the negatives come in the same order whatever the block)."""
KEEP = 100
"""Today's first products the ranker's verdict counts for, hence the only ones it scores
(some 210 candidates a person before, all of them counting): on the four cut-offs of
``benchmarks/bench_recommend.py`` neither hit@10 nor NDCG@10 fell with 100 (nor with 110 or
120), while 90 lowered hit@10 at 2010-07-01 (0.6300 against 0.6307) and 150 NDCG@10 at
2010-03-01 (0.1686 against 0.1687)."""
#: the features, in their columns' order
NAMES = (
    "nb_place", "nb_rel", "ta_place", "ta_rel", "pr_place", "trending", "popular", "age_days",
    "n_products", "recency", "fused", "tenure", "n_orders",
)  # fmt: skip
#: the features that are the same for every candidate of a person, and for every person of a
#: product: their trees' verdicts are found once per person, and once per product
PER_PERSON = tuple(NAMES.index(n) for n in ("n_products", "recency", "tenure", "n_orders"))
PER_PRODUCT = tuple(NAMES.index(n) for n in ("trending", "popular", "age_days"))


class Lists(Protocol):
    """What the ranker reads of a person's ranking (the service's ranked lists)."""

    @property
    def neighbours(self) -> list[tuple[str, float, str]]: ...
    @property
    def tastes(self) -> list[tuple[str, float]]: ...
    @property
    def priors(self) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class Plain:
    """Ranked lists given as they are (a batch of people ranked together builds these)."""

    neighbours: list[tuple[str, float, str]]
    tastes: list[tuple[str, float]]
    priors: list[tuple[str, str]]


@dataclass(frozen=True)
class Ranker:
    """The trained classifier (its trees' arrays) and what it was trained on."""

    classifier: Forest
    months: int
    people: int
    rows: int
    #: the products' features at the model's date (kept here, not in the model's memo: a
    #: model handed to another process goes without what was worked out of it)
    catalogue: Catalogue

    def scores(
        self, model: Model, batch: Sequence[tuple[PersonData, Lists]]
    ) -> list[dict[str, float]]:
        """Each person's candidates and their probability of being bought, one predict call."""
        rows, products, x = features(model.as_of, self.catalogue, batch)
        out: list[dict[str, float]] = [{} for _ in batch]
        if not len(x):
            return out
        proba = self.probabilities(model, rows, products, x)
        codes = self.catalogue.codes
        for r, j, p in zip(rows.tolist(), products.tolist(), proba.tolist(), strict=True):
            out[r][codes[j]] = p
        return out

    def scores_of(
        self, model: Model, data: PersonData, ranked: Lists, wanted: Iterable[str]
    ) -> dict[str, float]:
        """:meth:`scores` of one person, of the ``wanted`` products only (a candidate's
        probability does not depend on which others are scored): the same numbers."""
        products, x = features_of(model.as_of, self.catalogue, data, ranked, wanted)
        if not len(x):
            return {}
        proba = self.probabilities(model, np.zeros(len(x), np.int64), products, x)
        codes = self.catalogue.codes
        return {codes[j]: p for j, p in zip(products.tolist(), proba.tolist(), strict=True)}

    def probabilities(
        self,
        model: Model,
        rows: NDArray[np.int64],
        products: NDArray[np.int64],
        x: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """The forest's probability of each row of :func:`features` (``rows`` ascending), as
        its ``predict_proba`` gives it: the leaves a product's features leave are found once
        a model (:func:`product_leaves`), a person's once a call, and ANDed for each row."""
        forest = self.classifier
        if np.isnan(x).any():  # (the features are never missing: the trees' own walk)
            with _one_thread():  # several threads spend more processor time on the same work
                found: NDArray[np.float64] = forest.predict_proba(x)[:, 1]
            return found
        tables = forest.leaf_tables()
        by_product = product_leaves(model, self)
        one = bool(rows[0] == rows[-1])
        if one:
            person = np.zeros(1, np.int64)
            by_person = tables.left_of_one(PER_PERSON, x[0, PER_PERSON].tolist())[None, :]
        else:
            _, first, person = np.unique(rows, return_index=True, return_inverse=True)
            by_person = tables.left(PER_PERSON, x[first][:, PER_PERSON])
        raw = np.full(x.shape[0], forest.baseline)
        covered = PER_PERSON + PER_PRODUCT
        for start in range(0, x.shape[0], BLOCK):
            at = slice(start, start + BLOCK)
            known = by_product[products[at]]
            known &= by_person[0] if one else by_person[person[at]]
            tables.add_leaves(x[at], raw[at], known=(known, covered))
        done: NDArray[np.float64] = expit(raw)
        return done


def product_leaves(model: Model, ranker: Ranker) -> NDArray[np.uint32]:
    """Each catalogue product's leaves left in each tree (a bit each) by its own features
    (:data:`PER_PRODUCT`), found once a model: products x trees."""
    key = ("product-leaves", id(ranker))
    found: NDArray[np.uint32] | None = model.memo.get(key)
    if found is None:
        cat = ranker.catalogue
        values = np.column_stack((cat.trending, cat.popular, cat.age_days))
        found = model.memo[key] = ranker.classifier.leaf_tables().left(PER_PRODUCT, values)
    return found


_controller: list[Any] = []


def _one_thread() -> Any:
    """OpenMP and BLAS held to one thread (the controller is found once: finding it scans the
    loaded libraries)."""
    if not _controller:
        from threadpoolctl import ThreadpoolController

        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1)


@dataclass(frozen=True)
class Catalogue:
    codes: tuple[str, ...]
    index: Mapping[str, int]
    trending: NDArray[np.float64]
    popular: NDArray[np.float64]
    age_days: NDArray[np.float64]


def catalogue(model: Model, sold: Mapping[str, datetime]) -> Catalogue:
    """The products' features at ``model``'s date; ``sold``: when each product first sold
    (what sold at or after the model's date counts as not sold yet)."""
    first = {code: at for code, at in sold.items() if at < model.as_of}
    # sorted: the rows' order, hence the negatives kept, the same whatever order ``sold`` has
    codes = tuple(sorted({*first, *model.trending, *model.popular, *model.seasonal}))
    index = {c: j for j, c in enumerate(codes)}

    def places(ranking: Sequence[str]) -> NDArray[np.float64]:
        out = np.full(len(codes), ABSENT)
        out[[index[c] for c in ranking]] = np.arange(len(ranking), dtype=np.float64)
        return out

    age = np.full(len(codes), -1.0)
    for code, at in first.items():
        age[index[code]] = float((model.as_of - at).days)
    return Catalogue(codes, index, places(model.trending), places(model.popular), age)


def features(
    as_of: datetime, cat: Catalogue, batch: Sequence[tuple[PersonData, Lists]]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """``(person's row in batch, product index in ``cat``, features)`` at ``as_of``, one
    row per candidate, grouped by person."""
    index = cat.index
    who: list[int] = []
    what: list[int] = []
    which: list[int] = []
    place: list[int] = []
    rel: list[float] = []
    per_person = np.zeros((len(batch), 4))
    for r, (data, ranked) in enumerate(batch):
        bought, per_person[r] = _person(as_of, data)
        for part, (found, values) in enumerate(_lists(ranked, bought, index)):
            n = len(found)
            if not n:
                continue
            top = values[0] if values[0] > 0 else 1.0
            who += [r] * n
            what += found
            which += [part] * n
            place += range(n)
            rel += [s / top for s in values]
    size = len(cat.codes)
    key = np.asarray(who, dtype=np.int64) * size + np.asarray(what, dtype=np.int64)
    unique, inverse = np.unique(key, return_inverse=True)
    x = np.zeros((unique.size, len(NAMES)))
    x[:, [0, 2, 4]] = ABSENT
    lists = np.asarray(which)
    places = np.asarray(place, dtype=np.float64)
    scores = np.asarray(rel, dtype=np.float64)
    for part, (p_col, r_col) in enumerate(((0, 1), (2, 3), (4, None))):
        mask = lists == part
        x[inverse[mask], p_col] = places[mask]
        if r_col is not None:
            x[inverse[mask], r_col] = scores[mask]
    rows, products = unique // size, unique % size
    _rest(x, cat, products, per_person[rows])
    return rows, products, x


def features_of(
    as_of: datetime, cat: Catalogue, data: PersonData, ranked: Lists, wanted: Iterable[str]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``(product index in ``cat``, features)`` of ``data``'s candidates among ``wanted``: the
    rows :func:`features` gives of this one person, those of ``wanted`` only, in no set
    order."""
    index = cat.index
    bought, person = _person(as_of, data)
    # each list's place of every product (columns 0, 2, 4), its relative score (1, 3)
    places = np.full((3, len(cat.codes)), ABSENT)
    scores = np.zeros((2, len(cat.codes)))
    for part, (found, values) in enumerate(_lists(ranked, bought, index)):
        if found:
            places[part, found] = np.arange(len(found), dtype=np.float64)
            if part < 2:
                top = values[0] if values[0] > 0 else 1.0
                scores[part, found] = [s / top for s in values]
    wanted_at = np.asarray([j for j in map(index.get, wanted) if j is not None], np.int64)
    products = wanted_at[(places[:, wanted_at] != ABSENT).any(axis=0)]
    n = products.size
    x = np.empty((n, len(NAMES)))
    if not n:
        return products, x
    x[:, [0, 2, 4]] = places[:, products].T
    x[:, [1, 3]] = scores[:, products].T
    _rest(x, cat, products, person)
    return products, x


def _rest(x: NDArray[np.float64], cat: Catalogue, products: NDArray[np.int64], person: Any) -> None:
    """The columns of :data:`NAMES` after the lists' places and scores (set already): each
    row's product's, its person's (``person``: a row each, or one for all) and the fused
    place."""
    x[:, 5] = cat.trending[products]
    x[:, 6] = cat.popular[products]
    x[:, 7] = cat.age_days[products]
    x[:, [8, 9, 11, 12]] = person
    x[:, 10] = 1 / (10 + x[:, 0]) + 1 / (10 + x[:, 2]) + 0.5 / (10 + x[:, 4])


def _person(as_of: datetime, data: PersonData) -> tuple[set[str], tuple[int, int, int, int]]:
    """What the person bought, and their features: number of products, days since their last
    and first purchase, number of orders (zeros with no purchase)."""
    bought = {code for _, code in data.purchases}
    when = [at for at, _ in data.purchases]
    if not when:
        return bought, (0, 0, 0, 0)
    return bought, (
        len(bought), (as_of - max(when)).days, (as_of - min(when)).days, len(set(when)),
    )  # fmt: skip


def _lists(
    ranked: Lists, bought: set[str], index: Mapping[str, int]
) -> tuple[tuple[list[int], list[float]], ...]:
    """The first :data:`DEPTH` of the neighbours, tastes and priors not in ``bought``, each
    as its products' catalogue indices and their scores (the priors run long: cut early)."""
    return (
        _unbought(ranked.neighbours, bought, index, False),
        _unbought(ranked.tastes, bought, index, False),
        _unbought(ranked.priors, bought, index, True),
    )


def _unbought(
    items: Sequence[tuple[Any, ...]], bought: set[str], index: Mapping[str, int], prior: bool
) -> tuple[list[int], list[float]]:
    """The catalogue index and score of each of the first :data:`DEPTH` of ``items`` (``(code,
    score, ...)``; ``prior``: ``(code, name)``, scored 0, those out of the catalogue left out
    too) not in ``bought``, in order."""
    # they lie among the first DEPTH + len(bought) (all of a learned list, which runs that
    # deep), unless a prior is out of the catalogue (then the whole list is read)
    head = items[: DEPTH + len(bought)]
    if prior:
        looked = [index.get(c) for c, _ in head if c not in bought]
        if None in looked or (len(looked) < DEPTH and len(head) < len(items)):
            looked = [index.get(c) for c, _ in items if c not in bought]
        found = [j for j in looked if j is not None][:DEPTH]
        return found, [0.0] * len(found)
    kept = [item for item in head if item[0] not in bought][:DEPTH]
    if len(kept) < DEPTH and len(head) < len(items):
        kept = [item for item in items if item[0] not in bought][:DEPTH]
    return [index[item[0]] for item in kept], [item[1] for item in kept]


def month_before(day: datetime, n: int) -> datetime:
    index = day.year * 12 + day.month - 1 - n
    return datetime(index // 12, index % 12 + 1, 1)


def first_purchases(
    people: Mapping[int, PersonData], start: datetime, until: datetime
) -> dict[int, set[str]]:
    """The products each person bought for the first time in ``[start, until)``."""
    if isinstance(people, People):
        return _first_purchases(people, start, until)
    out: dict[int, set[str]] = {}
    for pid, data in people.items():
        first: dict[str, datetime] = {}
        for at, code in data.purchases:
            if code not in first or at < first[code]:
                first[code] = at
        new = {c for c, at in first.items() if start <= at < until}
        if new:
            out[pid] = new
    return out


def _first_purchases(people: People, start: datetime, until: datetime) -> dict[int, set[str]]:
    """:func:`first_purchases` on the arrays: each person's purchases come in order of time,
    so a (person, product) pair's first row is its first purchase."""
    owner = people.owners()
    pairs = owner * max(len(people.codes), 1) + people.code
    _, first = np.unique(pairs, return_index=True)
    epoch = datetime(1970, 1, 1)
    low, high = ((day - epoch) // timedelta(microseconds=1) for day in (start, until))
    at = people.at[first]
    chosen = first[(at >= low) & (at < high)]
    out: dict[int, set[str]] = {}
    codes = people.codes
    for row, k in zip(owner[chosen].tolist(), people.code[chosen].tolist(), strict=True):
        out.setdefault(int(people.ids[row]), set()).add(codes[k])
    return out


def train(
    model: Model,
    anchor_model: Callable[[datetime], Model],
    rank: Callable[[Model, PersonData], Lists],
    sold: Mapping[str, datetime],
) -> tuple[Ranker | None, str]:
    """The ranker of ``model`` (``None`` when there is too little history) and what was done,
    said in a sentence. ``anchor_model(day)``: the model at a month start before ``model``'s
    date (built without a ranker); ``rank``: a person's ranked lists under a model; ``sold``:
    when each product first sold before ``model``'s date."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    parts: list[NDArray[np.float64]] = []
    labels: list[NDArray[np.bool_]] = []
    months = people = 0
    # the negatives are sampled month by month, as they come: a month of a million people's
    # candidates is gigabytes of features, most of them left out
    draw = np.random.default_rng(0)
    for n in range(1, ANCHORS + 1):
        start = month_before(model.as_of, n)
        until = min(model.as_of, start + timedelta(days=HORIZON_DAYS))
        wanted = first_purchases(model.people, start, until)
        if not wanted:
            continue
        earlier = anchor_model(start)
        if earlier.learned is None:
            continue
        chosen = sorted(p for p in wanted if p in earlier.people and earlier.people[p].purchases)
        if not chosen:
            continue
        cat = catalogue(earlier, sold)
        codes = cat.codes
        # a block of people at a time: their ranked lists, as Python objects, are what weighs
        for begin in range(0, len(chosen), TRAIN_BLOCK):
            block = chosen[begin : begin + TRAIN_BLOCK]
            batch = [(earlier.people[p], rank(earlier, earlier.people[p])) for p in block]
            rows, products, x = features(earlier.as_of, cat, batch)
            del batch
            y = np.fromiter(
                (codes[j] in wanted[block[r]] for r, j in zip(rows, products, strict=True)),
                dtype=np.bool_,
                count=rows.size,
            )
            kept = y | (draw.random(y.size) < NEGATIVES)
            parts.append(x[kept])
            labels.append(y[kept])
            del x
        months += 1
        people += len(chosen)
    if months < MIN_MONTHS or people < MIN_PEOPLE:
        return None, (
            f"no learned ranker: {months} month(s) and {people} labelled people before "
            f"{model.as_of:%Y-%m-%d} (at least {MIN_MONTHS} and {MIN_PEOPLE} needed); "
            "today's ranking stands"
        )
    x, y = np.vstack(parts), np.concatenate(labels)
    del parts
    classifier = HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=200,
        l2_regularization=1.0, random_state=0,
    )  # fmt: skip
    with _one_thread():
        classifier.fit(x, y)
    # kept as its trees' arrays (what the store keeps, read back without pickle)
    return Ranker(Forest.of(classifier), months, people, int(y.size), catalogue(model, sold)), (
        f"learned ranker fused with today's ranking: trained on {months} month(s), "
        f"{people:,} people, {int(y.size):,} candidates"
    )


def blended(
    scored: list[tuple[str, float]], learned: Mapping[str, float]
) -> list[tuple[str, float]]:
    """``scored`` (today's fused scores) rescored ``1 / (10 + the ranker's place) + 1 / (10 +
    today's place)``, ties in either order broken by the other order, then by code; a product
    the ranker did not score, or past today's first :data:`KEEP`, comes after those it did."""
    if not scored:
        return scored
    codes = [c for c, _ in scored]
    # (the codes are distinct: sorted in Python, short of making them a numpy array first)
    by_code = np.asarray(sorted(range(len(codes)), key=codes.__getitem__), np.int64)
    today = np.asarray([s for _, s in scored])[by_code]
    theirs = np.asarray([learned.get(c, -1.0) for c in codes])[by_code]
    rows = np.zeros(len(codes), np.int64)
    score = np.empty(len(codes))
    score[by_code] = blend(rows, today, theirs, places_today(rows, today))
    return list(zip(codes, score.tolist(), strict=True))


def blended_ranked(
    today: list[tuple[str, float]], learned: Mapping[str, float]
) -> list[tuple[str, float]]:
    """:func:`blended` of ``today`` given in today's order (best first, ties by code, as
    :func:`~surmesure.decide.recommend.scoring.best_first` gives it), in that order, the
    same scores to the bit: a product's place today is its place there, and the first
    :data:`KEEP` are sorted again by both orders in Python (a sort that keeps ties in the
    order it is given breaks them by today's place, hence by code, as :func:`blend` does)."""
    counted = [(-score, -learned.get(code, -1.0)) for code, score in today[:KEEP]]
    # each sorted as tuples (compared in C), today's place last: ties by code
    mine = sorted([(a, b, i) for i, (a, b) in enumerate(counted)])
    theirs = sorted([(b, a, i) for i, (a, b) in enumerate(counted)])
    # 1 / (10 + place) as numpy computes it: the place is exact as a float, each step rounded
    steps = [0.0] * len(counted)
    for p, (_, _, i) in enumerate(mine):
        steps[i] = 1 / (10 + p)
    for p, (_, _, i) in enumerate(theirs):
        steps[i] += 1 / (10 + p)
    out = [(code, steps[i]) for i, (code, _) in enumerate(today[:KEEP])]
    for p in range(len(out), len(today)):
        step = 1 / (10 + p)
        out.append((today[p][0], step + step))
    return out


def places_today(rows: NDArray[np.int64], today: NDArray[np.float64]) -> NDArray[np.int64]:
    """Each product's place in its row by today's score, ties by code (``rows``, ``today``:
    one product of one row each, each row's in code order): the ranker's verdict counts for
    the first :data:`KEEP` of a row only."""
    return places_in_rows(rows, (-today,))


def blend(
    rows: NDArray[np.int64],
    today: NDArray[np.float64],
    theirs: NDArray[np.float64],
    mine: NDArray[np.int64],
) -> NDArray[np.float64]:
    """The blend's score of each product (:func:`blended`) of many rows at once, from its
    row (each row's products in code order), today's score, the ranker's (``-1``: not
    scored; read for the first :data:`KEEP` of a row only) and its :func:`places_today`.
    Past a row's first :data:`KEEP`, a product comes after all of them in both orders (its
    score today is no higher, its code higher on a tie, and the ranker's verdict of it counts
    as none), so its place in both is its place today: only the first are sorted again."""
    step = 1 / (10 + mine)
    score = step + step
    counted = mine < KEEP
    rows, today, theirs = rows[counted], today[counted], theirs[counted]
    score[counted] = 1 / (10 + places_in_rows(rows, (-today, -theirs))) + 1 / (
        10 + places_in_rows(rows, (-theirs, -today))
    )
    return score


def places_in_rows(rows: NDArray[np.int64], keys: tuple[NDArray[Any], ...]) -> NDArray[np.int64]:
    """Each entry's place in its row when sorted by ``keys`` (the last the first looked at,
    as :func:`numpy.lexsort` reads them), ties in the entries' order. The rows are sorted
    side by side, a row of a grid each (as wide as the longest, padded past their ends):
    many short sorts instead of one long one."""
    if not rows.size:
        return np.zeros(0, np.int64)
    if rows[0] == rows[-1] and bool((rows == rows[0]).all()):  # one row: one plain sort
        order = np.lexsort(keys)
        alone: NDArray[np.int64] = np.empty_like(order)
        alone[order] = np.arange(order.size)
        return alone
    if bool(np.any(rows[1:] < rows[:-1])):  # the rows interleaved: each one's entries together
        by_row = np.argsort(rows, kind="stable")
        unmixed = np.empty(rows.size, np.int64)
        unmixed[by_row] = places_in_rows(rows[by_row], tuple(key[by_row] for key in keys))
        return unmixed
    starts = np.flatnonzero(np.diff(rows, prepend=-1))
    sizes = np.diff(np.append(starts, rows.size))
    width = int(sizes.max())
    # each entry's cell in the grid: its row's line, its place among its row's entries
    cell = np.arange(rows.size) + np.repeat(np.arange(starts.size) * width - starts, sizes)
    grids = []
    for key in keys:
        grid = np.full(starts.size * width, np.inf)
        grid[cell] = key
        grids.append(grid.reshape(starts.size, width))
    order = np.lexsort(grids, axis=1)
    place = np.empty_like(order)
    np.put_along_axis(place, order, np.arange(width)[None, :], axis=1)
    found: NDArray[np.int64] = place.ravel()[cell]
    return found
