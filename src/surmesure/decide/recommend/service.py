"""Recommendations for one person or for everyone: the Python API the CLI and the decision
API call.

A person gets complementary products to what they bought (co-purchase rules, see
:mod:`~surmesure.decide.recommend.scoring`), fused with popularity in their RFM segment, then
popularity overall (the same season last year first); an anonymous visitor gets popularity
alone. When the model learned neighbours and tastes from everyone's purchases (enough data,
see :mod:`~surmesure.decide.recommend.learned`), a person's ranking fuses those two with
what sells lately and the popularity above (weights in
:class:`~surmesure.decide.recommend.scoring.Scoring`, measured out of sample on several
cut-offs of Online Retail II: ``benchmarks/bench_recommend.py``); when the model trained a
learned ranker (:mod:`~surmesure.decide.recommend.ranker`), its order of the candidates is
fused by rank with that one, each item keeping the reason of its strongest part. Guardrails
(:mod:`~surmesure.decide.recommend.guardrails`) apply to every item, and every item says why
it is there. With ``as_of``, only orders, stock, traits and metrics
before that instant count, so a recommendation can be replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Connection

from surmesure.decide.recommend import people, ranker
from surmesure.decide.recommend.guardrails import (
    Policy,
    Stock,
    allowed,
    already_bought,
    cap_per_category,
    serving_stores,
)
from surmesure.decide.recommend.inventory import snapshot, stock_of
from surmesure.decide.recommend.model import Model, get_model, person_data
from surmesure.decide.recommend.scoring import (
    Candidate,
    Scoring,
    best_first,
    complementary,
    fused_ranked,
    fused_scores,
    prior_ranking,
)
from surmesure.errors import InvalidInput
from surmesure.store.engine import Store
from surmesure.unify.profile import existing_root

T = TypeVar("T", bound=tuple[Any, ...])

SEGMENT, SEASON, POPULAR, TRENDING = "segment", "season", "popular", "trending"
NEIGHBOURS, TASTES = "neighbours", "tastes"
REASONS = {
    SEGMENT: "popular in your segment",
    SEASON: "popular this season",
    POPULAR: "popular",
    TRENDING: "popular lately",
    TASTES: "liked by customers like you",
}


@dataclass(frozen=True)
class Recommendation:
    """One recommended product, its score (higher is better, comparable within one list)
    and why it is recommended."""

    product_code: str
    name: str | None
    category: str | None
    price: float | None
    score: float
    reason: str


@contextmanager
def _connection(store: Store, conn: Connection | None) -> Iterator[Connection]:
    if conn is not None:
        yield conn
    else:
        with store.connect() as own:
            yield own


def _check(k: int, per_category: int) -> None:
    if k < 1:
        raise InvalidInput(f"k={k} asks for no product.", hint="use k >= 1", field="k")
    if per_category < 1:
        raise InvalidInput(
            f"per_category={per_category} allows no product.",
            hint="use per_category >= 1",
            field="per_category",
        )


def recommend(
    store: Store,
    person_id: int | None,
    *,
    k: int = 10,
    as_of: datetime | None = None,
    store_id: str | None = None,
    exclude_categories: Sequence[str] = (),
    per_category: int = 3,
    conn: Connection | None = None,
    policy: Policy | None = None,
    scoring: Scoring | None = None,
    person: people.PersonData | None = None,
) -> list[Recommendation]:
    """The top ``k`` products for ``person_id`` (``None``: an anonymous visitor), best first.
    ``store_id`` is the store whose stock counts (default: the person's home store), besides
    web stock. :class:`NotFound` when there is no such person. ``person``: what the caller
    already read of ``person_id`` as of the model's date (then nothing of them is read)."""
    _check(k, per_category)
    data: people.PersonData | None = None
    given = person is not None and person.person_id == person_id
    if conn is None and (person_id is None or given):
        # nothing to read of the person: the cached model and stock need no connection
        model = get_model(store, None, as_of)
        data = person if person_id is not None else None
        stock = snapshot(store, None, as_of)
        return list(
            _picked(
                model, data, scoring or Scoring(), stock, k, store_id,
                tuple(exclude_categories), per_category, policy,
            )
        )  # fmt: skip
    with _connection(store, conn) as c:
        model = get_model(store, c, as_of)
        if given:
            data = person
        elif person_id is not None:
            hint = "name an existing person id, or None for an anonymous visitor"
            root = existing_root(c, person_id, hint)
            data = person_data(store, model, root) or people.person(c, root, model.as_of)
        ranked = _ranked(model, data, scoring or Scoring())
        stock = snapshot(store, c, as_of)
    return pick(model, data, ranked, stock, k, store_id, exclude_categories, per_category, policy)


def recommend_all(
    store: Store,
    *,
    k: int = 10,
    as_of: datetime | None = None,
    exclude_categories: Sequence[str] = (),
    per_category: int = 3,
    policy: Policy | None = None,
    scoring: Scoring | None = None,
    on_start: Callable[[int], None] | None = None,
    person_ids: Collection[int] | None = None,
) -> Iterator[tuple[int, str | None, list[Recommendation]]]:
    """``(person_id, customer_id, recommendations)`` for every identified person (or those of
    ``person_ids``), by person id; data is read once up front. ``on_start(total)`` is told how
    many people follow."""
    _check(k, per_category)
    with store.connect() as c:
        model = get_model(store, c, as_of)
        # everyone as of the model's date: the model read them (a second read of every
        # purchase would cost as much as the ranking)
        ids, datas = people.chosen(model.people, person_ids)
        customers = people.customer_ids(store, c)
        stock = stock_of(c, None, as_of)
    if on_start is not None:
        on_start(len(ids))
    from surmesure.decide.recommend.everyone import Job, rank_all

    job = Job(
        model, stock, k, tuple(exclude_categories), per_category, policy, scoring or Scoring()
    )
    lists = rank_all(job, datas, store.settings.recommend_workers)
    for pid, recs in zip(ids, lists, strict=True):
        yield pid, customers.get(pid), recs


def ranked_many(
    model: Model, datas: Sequence[people.PersonData], scoring: Scoring
) -> list[_Ranked]:
    """Each person's ranking, the learned ranker's scores computed for all at once."""
    rankeds = [_ranked(model, data, scoring, rank=False) for data in datas]
    if model.ranker is None:
        return rankeds
    learned = [i for i, r in enumerate(rankeds) if r.neighbours or r.tastes]
    scores = model.ranker.scores(model, [(datas[i], rankeds[i]) for i in learned])
    for i, found in zip(learned, scores, strict=True):
        rankeds[i] = replace(rankeds[i], learned=found)
    return rankeds


def recommend_many(
    store: Store,
    person_ids: Collection[int],
    *,
    k: int = 10,
    as_of: datetime | None = None,
    store_ids: Mapping[int, str | None] | None = None,
    per_category: int = 3,
    conn: Connection | None = None,
    policy: Policy | None = None,
    scoring: Scoring | None = None,
) -> dict[int, list[Recommendation]]:
    """The top ``k`` products of each of ``person_ids`` (current, unmerged ids), as
    :func:`recommend` gives them one by one, computed set-wise: the model (which holds what
    everyone had bought, their home store and segment) and the stock are read once for the
    whole set; only a person the model does not know yet (arrived since it was built) is read
    on their own. ``store_ids``: the store whose stock counts for each person (default: their
    home store)."""
    _check(k, per_category)
    wanted = store_ids or {}
    with _connection(store, conn) as c:
        model = get_model(store, c, as_of)
        stock = snapshot(store, c, as_of)
        known = people_of(model, c, person_ids)
    from surmesure.decide.recommend.batch import pick_many

    ids = list(known)
    wishes = [(known[p], wanted.get(p), None) for p in ids]
    together = pick_many(
        model, stock, wishes, k=k, per_category=per_category, policy=policy, scoring=scoring
    )
    return {
        p: items if items is not None else recommend_known(
            model, stock, known[p], k=k, store_id=wanted.get(p), per_category=per_category,
            policy=policy, scoring=scoring,
        )
        for p, items in zip(ids, together, strict=True)
    }  # fmt: skip


def people_of(
    model: Model, conn: Connection, person_ids: Collection[int]
) -> dict[int, people.PersonData]:
    """What recommendations need of each of ``person_ids`` (current, unmerged ids): the
    model's when it knows them, else read as of the model's date."""
    return {p: model.people.get(p) or people.person(conn, p, model.as_of) for p in person_ids}


def recommend_known(
    model: Model,
    stock: Stock,
    data: people.PersonData | None,
    *,
    k: int = 10,
    store_id: str | None = None,
    per_category: int = 3,
    policy: Policy | None = None,
    scoring: Scoring | None = None,
    factors: NDArray[np.float32] | None = None,
) -> list[Recommendation]:
    """The top ``k`` products of the person ``data`` describes (``None``: an anonymous
    visitor) from ``model`` and ``stock`` alone, reading nothing: what :func:`recommend` and
    :func:`recommend_many` give them (a process without the store, such as a send's worker,
    recommends this way from a model and stock handed to it). ``factors``: the person's
    fitted tastes, when ``model``'s learned signals were handed over without them
    (:meth:`~surmesure.decide.recommend.learned.Learned.without_people`)."""
    ranked = _ranked(model, data, scoring or Scoring(), factors)
    return pick(model, data, ranked, stock, k, store_id, (), per_category, policy)


PICKS_KEPT = 2_000
"""Lists a model keeps of the people it served (:func:`_picked`), cleared past that: about
1 KB each, some 2 MB at most. Enough for the pages of the visits under way; more are objects
the garbage collector walks while it holds the interpreter, for people not coming back soon
(see :data:`~surmesure.decide.serving_cache.PACKED_HELD`)."""


def _picked(
    model: Model,
    data: people.PersonData | None,
    scoring: Scoring,
    stock: Stock,
    k: int,
    store_id: str | None,
    excluded: tuple[str, ...],
    per_category: int,
    policy: Policy | None,
) -> list[Recommendation]:
    """:func:`pick` of what :func:`_ranked` ranks, kept by the model: the same model, stock
    snapshot and person (as the model holds them) give the same list, so a person decided
    for again (each page of a visit) is not ranked again while neither changed."""
    key = (
        None if data is None else data.person_id, k, store_id, excluded, per_category, policy,
        scoring,
    )  # fmt: skip
    picks: dict[Any, Any] = model.memo.setdefault("picks", {})
    found = picks.get(key)
    # the model reads each person when asked (a new object each time): the same read counts
    if found is not None and found[0] is stock and found[1] == data:
        result: list[Recommendation] = found[2]
        return result
    result = pick(
        model, data, _ranked(model, data, scoring), stock, k, store_id, excluded, per_category,
        policy,
    )  # fmt: skip
    if len(picks) >= PICKS_KEPT:
        picks.clear()
    picks[key] = (stock, data, result)
    return result


@dataclass(frozen=True)
class _Ranked:
    associated: list[tuple[str, float, str]]
    priors: list[tuple[str, str]]
    scoring: Scoring
    #: learned rankings, best first: ``(code, score, antecedent)`` of the neighbours and
    #: ``(code, score)`` of the tastes (empty without learned signals or purchases)
    neighbours: list[tuple[str, float, str]] = field(default_factory=list)
    tastes: list[tuple[str, float]] = field(default_factory=list)
    #: the learned ranker's probability of each candidate (``None``: no ranker takes part,
    #: or it is asked in :func:`pick`, see ``person``)
    learned: Mapping[str, float] | None = None
    #: the person whose ranker's probabilities :func:`pick` asks for, of the products its
    #: verdict counts for only (today's first :data:`~surmesure.decide.recommend.ranker.KEEP`)
    person: people.PersonData | None = None


def lists_of(model: Model, data: people.PersonData) -> _Ranked:
    """The ranked lists the learned ranker reads of ``data`` under ``model``."""
    return _ranked(model, data, Scoring(), rank=False)


def _ranked(
    model: Model,
    data: people.PersonData | None,
    scoring: Scoring,
    factors: NDArray[np.float32] | None = None,
    *,
    rank: bool = True,
) -> _Ranked:
    learned = model.learned
    neighbours: list[tuple[str, float, str]] = []
    tastes: list[tuple[str, float]] = []
    if learned is not None and data is not None and data.purchases:
        scoring = scoring.with_learned()
        # deep enough for what the person bought to be removed and the depth left
        depth = scoring.depth + len({code for _, code in data.purchases})
        neighbours = learned.neighbours(
            data.purchases, model.as_of, scoring.neighbour_half_life_days, depth
        )
        tastes = learned.tastes(data.person_id, data.purchases, depth, factors)
    associated = (
        []
        if data is None or scoring.association_weight <= 0
        else complementary(data.purchases, model.rules, model.as_of, scoring.history_half_life_days)
    )
    segment = None if data is None else data.segment
    priors = priors_of(model, segment, bool(neighbours or tastes))
    asked = rank and model.ranker is not None and data is not None and (neighbours or tastes)
    return _Ranked(associated, priors, scoring, neighbours, tastes, person=data if asked else None)


def priors_of(model: Model, segment: str | None, lately: bool) -> list[tuple[str, str]]:
    """The popularity rankings chained for a segment, ``(code, prior name)`` best first ("popular
    lately" first with learned signals): the same for everyone in it, chained once per model."""
    priors: list[tuple[str, str]] | None = model.memo.get(("priors", segment, lately))
    if priors is None:
        lists: list[tuple[str, Sequence[str]]] = []
        if lately:
            lists.append((TRENDING, model.trending))
        if segment is not None:
            lists.append((SEGMENT, model.by_segment.get(segment, ())))
        lists += [(SEASON, model.seasonal), (POPULAR, model.popular)]
        priors = model.memo[("priors", segment, lately)] = prior_ranking(lists)
    return priors


def pick(
    model: Model,
    data: people.PersonData | None,
    ranked: _Ranked,
    stock: Stock,
    k: int,
    store_id: str | None,
    exclude_categories: Sequence[str],
    per_category: int,
    policy: Policy | None,
) -> list[Recommendation]:
    """Guardrails applied to the ranked candidates, then the first ``k`` under the cap."""
    chosen = policy or Policy()
    products = model.products
    banned = (
        set() if data is None else already_bought(data.purchases, model.as_of, chosen, products)
    )
    stores = serving_stores(None if data is None else data.home_store, store_id)
    excluded = frozenset(exclude_categories)

    # verdicts of stock and category, the same for everyone served by these stores
    verdicts: dict[str, bool] = stock.memo.setdefault(
        ("verdicts", model.built_at, stores, excluded), {}
    )
    nothing: set[str] = set()

    def verdict(code: str) -> bool:
        found = verdicts.get(code)
        if found is None:
            found = verdicts[code] = allowed(
                code, banned=nothing, excluded=excluded, products=products, stock=stock,
                stores=stores,
            )  # fmt: skip
        return found

    def keep(code: str) -> bool:
        return code not in banned and verdict(code)

    def first_kept(items: Iterable[T], depth: int) -> list[T]:
        """The first ``depth`` of ``items`` (``(code, ...)``) :func:`keep` keeps, in order."""
        # the whole of a learned list (it runs the depth and what was bought deep), in one
        # comprehension: verdicts past the depth are found too, kept for the next person
        return [
            item
            for item in items
            if item[0] not in banned
            and (verdicts[item[0]] if item[0] in verdicts else verdict(item[0]))
        ][: max(depth, 0)]

    depth = ranked.scoring.depth
    # the priors are the same for a whole segment: filtered by stock and category once per
    # model, stock and stores; only what the person bought is left to remove
    key = ("priors", model.built_at, id(ranked.priors), stores, excluded)
    pool = stock.memo.get(key)
    if pool is None:
        pool = [item for item in ranked.priors if verdict(item[0])]
        if len(stock.memo) > 10_000:
            stock.memo.clear()
        stock.memo[key] = pool
    if banned:  # what the person bought leaves the segment's list (first-seen order kept)
        kept = [item for item in pool[: depth + len(banned)] if item[0] not in banned][:depth]
    else:
        kept = pool[:depth]
    # complementary products come unique and best first: filtered up to the depth
    associated = list(
        islice(
            (item for item in ranked.associated if item[0] not in banned and verdict(item[0])),
            depth,
        )
    )
    first = 4 * k * max(1, 4 // per_category) + 8
    if ranked.neighbours or ranked.tastes:
        return _learned_pick(model, ranked, kept, associated, first_kept, first, per_category, k)
    found = _head(associated, kept, first, ranked.scoring, products, per_category, k)
    if found is not None:
        best, score, because = found
        return [
            _recommendation(model, Candidate(code, score[code], because[code][1], because[code][2]))
            for code in best
        ]
    scored, because = fused_scores(
        associated, kept, keep, ranked.scoring, priors_kept=True, associated_kept=True
    )
    return _capped(model, scored, because, first, per_category, k)


def _capped(
    model: Model,
    scored: list[tuple[str, float]],
    because: Mapping[str, tuple[float, str | None, str | None]],
    first: int,
    per_category: int,
    k: int,
) -> list[Recommendation]:
    """The first ``k`` of ``scored`` under the cap, with their reasons."""
    score = dict(scored)
    # enough of the best for the cap to find k (a full sort only when it does not)
    top: list[str] = []
    for n in (first, None):
        ordered = best_first(scored, n)
        top = cap_per_category((code for code, _ in ordered), model.products, per_category, k)
        if len(top) >= k or n is None or n >= len(scored):
            break
    return [
        _recommendation(model, Candidate(code, score[code], because[code][1], because[code][2]))
        for code in top
    ]


def _learned_pick(
    model: Model,
    ranked: _Ranked,
    kept: list[tuple[str, str]],
    associated: list[tuple[str, float, str]],
    first_kept: Callable[[Iterable[Any], int], list[Any]],
    first: int,
    per_category: int,
    k: int,
) -> list[Recommendation]:
    """:func:`pick`'s ending when learned signals take part: every list kept to the depth
    (``first_kept``), fused, then the first ``k`` under the cap."""
    scoring = ranked.scoring
    depth = scoring.depth
    others = [
        (
            scoring.neighbour_weight,
            [(c, a, NEIGHBOURS) for c, _, a in first_kept(ranked.neighbours, depth)],
        ),
        (scoring.taste_weight, [(c, None, TASTES) for c, _ in first_kept(ranked.tastes, depth)]),
    ]
    scored, because = fused_ranked(
        associated, [(rank, code, prior) for rank, (code, prior) in enumerate(kept)], scoring,
        others,
    )  # fmt: skip
    if ranked.learned is not None:  # the learned ranker's order fused with this one
        scored = ranker.blended(scored, ranked.learned)
    elif ranked.person is not None and model.ranker is not None:
        # only the products the ranker's verdict counts for (today's first KEEP) are scored
        today = best_first(scored)
        counted = [code for code, _ in today[: ranker.KEEP]]
        scored = ranker.blended_ranked(
            today, model.ranker.scores_of(model, ranked.person, ranked, counted)
        )
    return _capped(model, scored, because, first, per_category, k)


def _head(
    associated: list[tuple[str, float, str]],
    kept: list[tuple[str, str]],
    first: int,
    scoring: Scoring,
    products: Mapping[str, Any],
    per_category: int,
    k: int,
) -> tuple[list[str], dict[str, float], dict[str, tuple[float, str | None, str | None]]] | None:
    """The top ``k`` under the cap from the best ``first`` of the fused ranking, scoring only
    what can be among them: the complementary products and the first ``first +
    len(associated)`` of the prior (a product only in the prior is beaten by every such one
    ranked before it); ``None`` when the cap leaves fewer than ``k`` there (then everything
    is scored, as before). The same list as the full scoring, at a fraction of its work."""
    head = kept[: first + len(associated)]
    ranked: list[tuple[int, str, str]] = [(r, c, p) for r, (c, p) in enumerate(head)]
    if len(head) < len(kept) and associated:
        seen = {c for c, _ in head}
        missing = {c for c, _, _ in associated if c not in seen}
        for rank in range(len(head), len(kept)):
            if not missing:
                break
            code, prior = kept[rank]
            if code in missing:
                missing.discard(code)
                ranked.append((rank, code, prior))
    scored, because = fused_ranked(associated, ranked, scoring)
    top = cap_per_category(
        (code for code, _ in best_first(scored, first)), products, per_category, k
    )
    if len(top) < k:
        return None
    return top, dict(scored), because


def _recommendation(model: Model, candidate: Candidate) -> Recommendation:
    product = model.products.get(candidate.product_code)
    if candidate.because_of is not None:
        other = model.products.get(candidate.because_of)
        name = (other.name if other and other.name else None) or candidate.because_of
        if candidate.prior == NEIGHBOURS:
            reason = f"bought by customers who bought {name}"
        else:
            reason = f"bought with {name}"
    else:
        reason = REASONS[candidate.prior or POPULAR]
    return Recommendation(
        product_code=candidate.product_code,
        name=None if product is None else product.name,
        category=None if product is None else product.category,
        price=None if product is None else product.price,
        score=candidate.score,
        reason=reason,
    )
