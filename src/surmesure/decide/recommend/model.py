"""What recommendations rest on at one ``as_of``, computed once and kept in the process.

A model holds the popularity rankings (overall, this season last year, per segment, lately),
the neighbours and tastes learned from everyone's purchases
(:mod:`~surmesure.decide.recommend.learned`), or the association rules when there are too few
buyers for them, the catalogue and what each
person had bought (with their home store and RFM segment), so that a live call for a person
known when the model was built reads nothing of them. It is cached
per (database, ``as_of``): for a past ``as_of`` it is rebuilt only when the orders or products
before that date changed (a cheap fingerprint query checks); for "now" (``as_of=None``) it is
rebuilt once it is older than :data:`NOW_TTL_SECONDS`, so a stream of new orders does not
re-mine the rules on every call.
"""

from __future__ import annotations

import atexit
import gc
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.recommend import popular
from surmesure.decide.recommend.association import Rules, mine_rules
from surmesure.decide.recommend.learned import Learned, fit
from surmesure.decide.recommend.people import PersonData, everyone
from surmesure.decide.recommend.ranker import Ranker, train
from surmesure.store import schema
from surmesure.store.engine import Store

NOW_TTL_SECONDS = 900.0
NO_RULES = Rules(0, {}, {})
#: the window of the "popular lately" ranking: what sells now (the Christmas ramp, a launch)
TRENDING_DAYS = 14
atexit.register(gc.unfreeze)  # what a model froze is handed back for the interpreter's exit


@dataclass(frozen=True)
class Product:
    product_code: str
    name: str | None
    category: str | None
    price: float | None


@dataclass(frozen=True)
class Model:
    """Rules, rankings and learned signals from the data before ``as_of`` (naive UTC)."""

    as_of: datetime
    rules: Rules
    popular: tuple[str, ...]
    seasonal: tuple[str, ...]
    by_segment: Mapping[str, tuple[str, ...]]
    products: Mapping[str, Product]
    #: what each person known at build time had bought before ``as_of``, their home store
    #: and segment: a live call reads nothing more of them while the model is kept
    people: Mapping[int, PersonData] = field(default_factory=dict)
    #: the most bought products over the last :data:`TRENDING_DAYS` before ``as_of``
    trending: tuple[str, ...] = ()
    #: neighbours and tastes learned from everyone's purchases (``None``: too little data)
    learned: Learned | None = None
    #: the learned ranker fused with the ranking (``None``: too little history to train it)
    ranker: Ranker | None = None
    #: what ranks the candidates, said in a sentence (the ranker, or why there is none)
    description: str = ""
    built_at: float = field(default_factory=time.monotonic)
    #: what is derived from the model alone, computed once (e.g. a segment's chained rankings)
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def build(
    conn: Connection, as_of: datetime, *, top: int = 500, ranker: bool | None = None
) -> Model:
    """Mine rules and rank products from the data before ``as_of``; with ``ranker`` (default:
    the store's ``recommend_ranker`` setting), train the learned ranker on the models of the
    month starts before it (:mod:`~surmesure.decide.recommend.ranker`)."""
    if ranker is None:
        ranker = Store.of(conn).settings.recommend_ranker
    p = schema.products
    products = {
        str(r.product_code): Product(
            str(r.product_code), r.name, r.category, None if r.price is None else float(r.price)
        )
        for r in conn.execute(sa.select(p.c.product_code, p.c.name, p.c.category, p.c.price))
    }
    people = everyone(conn, as_of)
    since = as_of - timedelta(days=TRENDING_DAYS)
    learned = fit({pid: data.purchases for pid, data in people.items()})
    model = Model(
        as_of=as_of,
        # the learned neighbours take the rules' place when there is enough data for them
        rules=mine_rules(conn, as_of) if learned is None else NO_RULES,
        popular=tuple(c for c, _ in popular.popular(conn, as_of, top=top)),
        seasonal=tuple(c for c, _ in popular.seasonal(conn, as_of, top=top)),
        by_segment={s: tuple(c) for s, c in popular.by_segment(conn, as_of).items()},
        products=products,
        people=people,
        trending=tuple(c for c, _ in popular.popular(conn, as_of, since=since, top=top)),
        learned=learned,
    )
    if not ranker:
        return replace(model, description="no learned ranker (SURMESURE_RECOMMEND_RANKER is off)")
    if learned is None:
        note = "no learned ranker: too few buyers for learned signals; co-purchase rules rank"
        return replace(model, description=note)
    from surmesure.decide.recommend.service import lists_of

    trained, note = train(
        model,
        lambda day: build(conn, day, top=top, ranker=False),
        lists_of,
        popular.first_sold(conn, as_of),
    )
    return replace(model, ranker=trained, description=note)


def fingerprint(conn: Connection, as_of: datetime) -> tuple[Any, ...]:
    """Changes when orders before ``as_of``, the catalogue, traits or merges change (counts
    and latest times)."""
    row = conn.execute(
        sa.text(
            "SELECT (SELECT count(*) FROM orders WHERE ordered_at < :as_of), "
            "(SELECT max(ordered_at) FROM orders WHERE ordered_at < :as_of), "
            "(SELECT count(*) FROM order_lines), "
            "(SELECT count(*) FROM products), (SELECT max(updated_at) FROM products), "
            "(SELECT max(computed_at) FROM derived_metrics), "
            "(SELECT count(*) FROM traits), "
            "(SELECT count(*) FROM people WHERE merged_into IS NOT NULL)"
        ),
        {"as_of": as_of},
    ).one()
    return tuple(row)


_cache: dict[tuple[str, datetime | None], tuple[tuple[Any, ...] | None, Model]] = {}
_lock = threading.Lock()


def get_model(
    store: Store,
    conn: Connection | None,
    as_of: datetime | None,
    *,
    max_age: float = NOW_TTL_SECONDS,
) -> Model:
    """The model for ``as_of`` (``None``: now), from the cache when still valid. ``conn``
    ``None``: a connection is opened only when the model must be built or checked.
    ``max_age``: how old a model for now may be (a server renews it a little early, in the
    background, so that no decision waits for a build)."""
    if conn is None:
        key = (store.url, as_of)
        with _lock:
            cached = _cache.get(key)
        if as_of is None and cached is not None and _fresh(cached[1], max_age):
            return cached[1]
        with store.connect() as own:
            return get_model(store, own, as_of, max_age=max_age)
    key = (store.url, as_of)
    with _lock:
        cached = _cache.get(key)
    if as_of is None:
        if cached is not None and _fresh(cached[1], max_age):
            return cached[1]
        model = build(conn, utcnow())
        stamp = None
    else:
        stamp = fingerprint(conn, as_of)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        model = build(conn, as_of)
    with _lock:
        _cache[key] = (stamp, model)
    # long-lived: out of the collector's full passes (a replaced model, free of cycles, is
    # still freed by its reference counts)
    gc.freeze()
    return model


def _fresh(model: Model, max_age: float) -> bool:
    return time.monotonic() - model.built_at < max_age


def clear_cache() -> None:
    """Forget every model and stock snapshot (after a bulk import, or between tests)."""
    from surmesure.decide.recommend.inventory import clear_snapshots

    clear_snapshots()
    with _lock:
        _cache.clear()
