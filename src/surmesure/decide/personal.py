"""A person's template context, built one way for a decision, a render and a campaign.

What a template reads of a person is the same wherever it renders (``POST /v1/decide``,
``surmesure render``, a campaign's message): their fields (traits and derived metrics, each
used only when reliable enough, else the field's neutral fallback, see
:func:`surmesure.decide.content.resolve_fields`), the context (:func:`build_context`: time of
day, season, nearest store...) and ``products``, the person's recommendations
(:mod:`surmesure.decide.recommend`). A person who opted out of personalization, or nobody
known, gets the popular products instead, as the explanation says; an empty list (no catalogue,
nothing in stock) is the template's own neutral block (``{% if products %}...{% else %}``).

:func:`personal` serves one person; :func:`personal_batch` a campaign's batch, with the
recommendations of the whole batch computed set-wise
(:func:`~surmesure.decide.recommend.service.recommend_many`) and the popular list once. With
``defer``, a batch's products are left to another process, which holds the model and the stock
(:class:`Recommending`): each person's :class:`Wanted` carries what was read of them, so that
process reads nothing and gives the same products.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.engine import Connection

from surmesure.decide.content import Audience
from surmesure.decide.context import build_context
from surmesure.store.engine import Store

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from surmesure.decide.recommend.guardrails import Stock
    from surmesure.decide.recommend.model import Model
    from surmesure.decide.recommend.people import PersonData

Recommender = Callable[..., Sequence[Any]]
#: how many products a template's ``products`` holds unless the caller asks otherwise
DEFAULT_PRODUCTS = 4
NO_SERVICE = "no recommendation service"
NONE_ASKED = "no products asked for"


@dataclass(frozen=True)
class Wanted:
    """A person's products, left to be recommended elsewhere: what was read of them
    (``None``: a neutral audience, who gets the popular products), the store whose stock
    counts, how many, and their fitted tastes (``None``: not in the model's fit), which the
    model handed over leaves out."""

    person: PersonData | None
    store_id: str | None
    k: int
    factors: NDArray[np.float32] | None = None


@dataclass(frozen=True)
class Personal:
    """The context and the products a template renders with for one person, and why;
    ``wanted``: the products are still to be recommended (:class:`Recommending`)."""

    context: dict[str, Any]
    products: list[dict[str, Any]]
    products_note: dict[str, Any]
    wanted: Wanted | None = None


@dataclass
class Recommending:
    """A model and a stock to recommend from without the store (a send's worker process):
    :meth:`fill` gives a deferred :class:`Personal` its products, as
    :func:`personal_batch` would have."""

    model: Model
    stock: Stock

    def fill(self, personal: Personal) -> Personal:
        wanted = personal.wanted
        if wanted is None:
            return personal
        from surmesure.decide.recommend.service import recommend_known

        items = recommend_known(
            self.model, self.stock, wanted.person, k=wanted.k, store_id=wanted.store_id,
            factors=wanted.factors,
        )  # fmt: skip
        return replace(personal, products=[plain(r) for r in items], wanted=None)

    def fill_many(self, personals: Sequence[Personal]) -> list[Personal]:
        """:meth:`fill` of each, the products of the people asking for as many computed
        together (:func:`~surmesure.decide.recommend.batch.pick_many`)."""
        from surmesure.decide.recommend.batch import pick_many

        out = list(personals)
        by_k: dict[int, list[int]] = {}
        for i, p in enumerate(personals):
            if p.wanted is not None and p.wanted.person is not None:
                by_k.setdefault(p.wanted.k, []).append(i)
        for k, places in by_k.items():
            wishes = []
            for i in places:
                wanted = personals[i].wanted
                assert wanted is not None
                wishes.append((wanted.person, wanted.store_id, wanted.factors))
            for i, items in zip(
                places, pick_many(self.model, self.stock, wishes, k=k), strict=True
            ):
                if items is not None:
                    out[i] = replace(out[i], products=[plain(r) for r in items], wanted=None)
        return [self.fill(p) for p in out]


@lru_cache(maxsize=1)
def default_recommender() -> Recommender | None:
    """The recommendation service, when it is installed."""
    try:
        from surmesure.decide.recommend.service import recommend
    except ImportError:
        return None
    return cast(Recommender, recommend)


def plain(item: Any) -> dict[str, Any]:
    """A recommendation as the template reads it: a dict."""
    if is_dataclass(item) and not isinstance(item, type):
        if hasattr(item, "__dict__"):  # a flat record: a shallow copy, no deep walk
            return dict(vars(item))
        return asdict(item)
    return dict(item)


def products_reason(audience: Audience) -> str:
    if not audience.neutral:
        return "recommended for this person"
    if audience.opted_out:
        return "opted out of personalization: popular products"
    return "unknown person: popular products"


def products_for(
    store: Store,
    conn: Connection | None,
    audience: Audience,
    k: int,
    as_of: datetime | None,
    store_id: str | None,
    recommender: Recommender | None,
    person: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``k`` products from ``recommender`` for ``audience`` (popular ones for a neutral
    audience); ``as_of`` ``None`` means now (so the recommender may reuse the model it keeps
    for the present instead of building one per instant)."""
    if recommender is None or k <= 0:
        return [], {"personalized": False, "reason": NONE_ASKED if k <= 0 else NO_SERVICE}
    personal_ = not audience.neutral
    extra = {"person": person} if personal_ and person is not None else {}
    found = recommender(
        store,
        audience.person_id if personal_ else None,
        k=k,
        as_of=as_of,
        store_id=store_id,
        conn=conn,
        **extra,
    )
    note = {"personalized": personal_, "reason": products_reason(audience)}
    return [plain(p) for p in found], note


def personal(
    store: Store,
    conn: Connection | None,
    audience: Audience,
    now: datetime,
    given: Mapping[str, Any] | None,
    *,
    k: int = DEFAULT_PRODUCTS,
    recommender: Recommender | None = None,
    as_of: datetime | None = None,
    person: Any = None,
) -> Personal:
    """One person's context and products (see the module)."""
    context = build_context(conn, audience, now, given, owner=store)
    nearest = context.get("nearest_store") or {}
    products, note = products_for(
        store, conn, audience, k, as_of, nearest.get("store_id"), recommender, person
    )
    return Personal(context, products, note)


def personal_batch(
    store: Store,
    conn: Connection,
    audiences: Mapping[int, Audience],
    now: datetime,
    given: Mapping[str, Any] | None,
    *,
    k: int = DEFAULT_PRODUCTS,
    as_of: datetime | None = None,
    defer: bool = False,
) -> dict[int, Personal]:
    """Each person's context and products, as :func:`personal` with the default recommender
    gives them one by one; ``k`` ``0``: no products (the templates print none). ``defer``:
    the products are left to :class:`Recommending` (see the module)."""
    contexts = {p: build_context(conn, a, now, given, owner=store) for p, a in audiences.items()}
    found: dict[int, list[dict[str, Any]]] = {}
    popular: list[dict[str, Any]] = []
    if defer and k > 0 and default_recommender() is not None:
        return _deferred(store, conn, audiences, contexts, k, as_of)
    if k > 0 and default_recommender() is not None:
        from surmesure.decide.recommend.service import recommend, recommend_many

        shops = {p: _shop(contexts[p]) for p, a in audiences.items() if not a.neutral}
        many = recommend_many(store, list(shops), k=k, as_of=as_of, store_ids=shops, conn=conn)
        found = {p: [plain(r) for r in items] for p, items in many.items()}
        if any(a.neutral for a in audiences.values()):
            popular = [plain(r) for r in recommend(store, None, k=k, as_of=as_of, conn=conn)]
    out: dict[int, Personal] = {}
    for p, audience in audiences.items():
        if k <= 0 or default_recommender() is None:
            note = {"personalized": False, "reason": NONE_ASKED if k <= 0 else NO_SERVICE}
            out[p] = Personal(contexts[p], [], note)
            continue
        note = {"personalized": not audience.neutral, "reason": products_reason(audience)}
        items = popular if audience.neutral else found[p]
        out[p] = Personal(contexts[p], list(items), note)
    return out


def _shop(context: Mapping[str, Any]) -> str | None:
    """The store whose stock counts for a person: the nearest in their context."""
    return cast("str | None", (context.get("nearest_store") or {}).get("store_id"))


def _deferred(
    store: Store,
    conn: Connection,
    audiences: Mapping[int, Audience],
    contexts: Mapping[int, dict[str, Any]],
    k: int,
    as_of: datetime | None,
) -> dict[int, Personal]:
    """:func:`personal_batch` with each person's products left to :class:`Recommending`."""
    from surmesure.decide.recommend.model import get_model
    from surmesure.decide.recommend.service import people_of

    model = get_model(store, conn, as_of)
    known = people_of(model, conn, [p for p, a in audiences.items() if not a.neutral])
    learned = model.learned
    out: dict[int, Personal] = {}
    for p, audience in audiences.items():
        note = {"personalized": not audience.neutral, "reason": products_reason(audience)}
        factors = None if learned is None or audience.neutral else learned.factors_of(p)
        wanted = (
            Wanted(None, None, k)
            if audience.neutral
            else Wanted(known[p], _shop(contexts[p]), k, factors)
        )
        out[p] = Personal(contexts[p], [], note, wanted)
    return out
