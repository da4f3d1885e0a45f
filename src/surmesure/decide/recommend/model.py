"""What recommendations rest on at one ``as_of``, computed once and kept in the process.

A model holds the popularity rankings (overall, this season last year, per segment, lately),
the neighbours and tastes learned from everyone's purchases
(:mod:`~surmesure.decide.recommend.learned`), or the association rules when there are too few
buyers for them, the catalogue and what each
person had bought (with their home store and RFM segment), so that a live call for a person
known when the model was built reads nothing of them. The learned signals and the learned
ranker are not fitted here: they come from the latest model kept in the store at or before
``as_of`` (:mod:`~surmesure.decide.recommend.kept`, fitted by ``recommend --fit``); with none,
the signals are fitted here and the plain ranking stands (the model says so). It is cached
per (database, ``as_of``): for a past ``as_of`` it is rebuilt only when the orders or products
before that date changed (a cheap fingerprint query checks); for "now" (``as_of=None``) it is
rebuilt once it is older than :data:`NOW_TTL_SECONDS` (reading the latest kept version again,
so a server takes up a new fit within that time), so a stream of new orders does not re-mine
the rules on every call. What the model for now holds of a person who buys meanwhile is read
again when the dispatcher tells of the order (:func:`bought`), so the next decision for them
leaves out what they just bought.
"""

from __future__ import annotations

import atexit
import gc
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.recommend import kept, popular
from surmesure.decide.recommend.association import Rules, mine_rules
from surmesure.decide.recommend.learned import Learned, fit
from surmesure.decide.recommend.people import PersonData, everyone, person
from surmesure.decide.recommend.ranker import Ranker, catalogue, train
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
    #: the kept fit it stands on (``None``: fitted in this process)
    kept: int | None = None
    built_at: float = field(default_factory=time.monotonic)
    #: what is derived from the model alone, computed once (e.g. a segment's chained rankings)
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def build(
    conn: Connection, as_of: datetime, *, top: int = 500, ranker: bool | None = None
) -> Model:
    """Fit the learned signals on the data before ``as_of`` and, with ``ranker`` (default: the
    store's ``recommend_ranker`` setting), train the learned ranker on the models of the month
    starts before it (:mod:`~surmesure.decide.recommend.ranker`): what
    :func:`~surmesure.decide.recommend.kept.fit_and_keep` keeps."""
    if ranker is None:
        ranker = Store.of(conn).settings.recommend_ranker
    people = everyone(conn, as_of)
    model = assemble(conn, as_of, fit(people.counts()), people, top)
    if not ranker:
        return replace(model, description=RANKER_OFF)
    if model.learned is None:
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


RANKER_OFF = "no learned ranker (SURMESURE_RECOMMEND_RANKER=0)"


def assemble(
    conn: Connection,
    as_of: datetime,
    learned: Learned | None,
    people: Mapping[int, PersonData] | None = None,
    top: int = 500,
) -> Model:
    """The model at ``as_of`` around ``learned`` signals fitted already: the rankings, the
    catalogue and the people are read, nothing is fitted (the rules are mined when there are no
    learned signals)."""
    p = schema.products
    products = {
        str(r.product_code): Product(
            str(r.product_code), r.name, r.category, None if r.price is None else float(r.price)
        )
        for r in conn.execute(sa.select(p.c.product_code, p.c.name, p.c.category, p.c.price))
    }
    since = as_of - timedelta(days=TRENDING_DAYS)
    return Model(
        as_of=as_of,
        # the learned neighbours take the rules' place when there is enough data for them
        rules=mine_rules(conn, as_of) if learned is None else NO_RULES,
        popular=tuple(c for c, _ in popular.popular(conn, as_of, top=top)),
        seasonal=tuple(c for c, _ in popular.seasonal(conn, as_of, top=top)),
        by_segment={s: tuple(c) for s, c in popular.by_segment(conn, as_of).items()},
        products=products,
        people=everyone(conn, as_of) if people is None else people,
        trending=tuple(c for c, _ in popular.popular(conn, as_of, since=since, top=top)),
        learned=learned,
    )


def from_store(conn: Connection, as_of: datetime) -> Model:
    """The model at ``as_of`` on the latest kept fit at or before it (nothing is fitted); with
    none, the plain model (learned signals fitted here, no learned ranker), saying so."""
    found = kept.latest(conn, as_of)
    if found is None:
        model = build(conn, as_of, ranker=False)
        return replace(
            model,
            description=f"no kept recommendation model fitted before {as_of:%Y-%m-%d %H:%M}: "
            "today's ranking without the learned ranker (fit one: surmesure recommend --fit)",
        )
    fitted = kept.load(Store.of(conn), conn, found)
    model = replace(assemble(conn, as_of, fitted.learned), kept=found.version)
    said = (
        f"kept model version {found.version}, fitted on the data before "
        f"{found.as_of:%Y-%m-%d %H:%M}: "
    )
    if fitted.forest is None or fitted.learned is None:
        return replace(model, description=said + str(found.metrics.get("description", "")))
    if not Store.of(conn).settings.recommend_ranker:
        return replace(model, description=said + RANKER_OFF)
    info = found.metrics.get("ranker") or {}
    trained = Ranker(
        fitted.forest,
        int(info.get("months", 0)),
        int(info.get("people", 0)),
        int(info.get("rows", 0)),
        catalogue(model, popular.first_sold(conn, as_of)),
    )
    return replace(model, ranker=trained, description=said + str(found.metrics["description"]))


def fingerprint(conn: Connection, as_of: datetime) -> tuple[Any, ...]:
    """Changes when orders before ``as_of``, the catalogue, traits or merges change (counts
    and latest times), or a model is kept."""
    row = conn.execute(
        sa.text(
            "SELECT (SELECT count(*) FROM orders WHERE ordered_at < :as_of), "
            "(SELECT max(ordered_at) FROM orders WHERE ordered_at < :as_of), "
            "(SELECT count(*) FROM order_lines), "
            "(SELECT count(*) FROM products), (SELECT max(updated_at) FROM products), "
            "(SELECT max(computed_at) FROM derived_metrics), "
            "(SELECT count(*) FROM traits), "
            "(SELECT count(*) FROM people WHERE merged_into IS NOT NULL), "
            "(SELECT max(version) FROM recommendation_models)"
        ),
        {"as_of": as_of},
    ).one()
    return tuple(row)


_cache: dict[tuple[str, datetime | None], tuple[tuple[Any, ...] | None, Model]] = {}
_lock = threading.Lock()
#: per database, the people read again since the model for now was built because they bought:
#: ``(when read, their purchases until then, home store and segment)``
_buyers: dict[str, dict[int, tuple[datetime, PersonData]]] = {}
#: most buyers read again one by one from one piece of news; more (an import of orders): the
#: model for now is built again in the background, decisions keeping the one in hand meanwhile
MAX_BUYERS = 500
_renewing: set[str] = set()


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
        model = from_store(conn, utcnow())
        stamp = None
    else:
        stamp = fingerprint(conn, as_of)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        model = from_store(conn, as_of)
    with _lock:
        _cache[key] = (stamp, model)
        if as_of is None:
            _forget_buyers(store.url, model.as_of)
    # long-lived: out of the collector's full passes (a replaced model, free of cycles, is
    # still freed by its reference counts)
    gc.freeze()
    return model


def person_data(store: Store, model: Model, person_id: int) -> PersonData | None:
    """What ``model`` holds of ``person_id``; for the model for now, what was read of them
    since, when they bought after it was built (:func:`bought`)."""
    fresh = _buyers.get(store.url)
    if fresh:
        found = fresh.get(person_id)
        if found is not None and found[0] >= model.as_of:
            current = _cache.get((store.url, None))
            if current is not None and current[1] is model:
                return found[1]
    return model.people.get(person_id)


def bought(store: Store, person_ids: Collection[int]) -> None:
    """The dispatcher's news of orders (:func:`surmesure.dispatch.people.listen`): read
    again what recommendations know of these people, so a decision made while the model for
    now is kept leaves out what they just bought. Past :data:`MAX_BUYERS` at once, the model
    is built again in the background instead."""
    with _lock:
        cached = _cache.get((store.url, None))
    if cached is None or not person_ids:
        return  # no model for now here: the one built next reads them
    if len(person_ids) > MAX_BUYERS:
        _renew(store)
        return
    now = utcnow()
    with store.connect() as conn:
        read = {pid: (now, person(conn, pid, now)) for pid in person_ids}
    with _lock:
        _buyers.setdefault(store.url, {}).update(read)


def _renew(store: Store) -> None:
    """Build the model for now again in a thread of its own (one at a time per database)."""
    with _lock:
        if store.url in _renewing:
            return
        _renewing.add(store.url)

    def run() -> None:
        try:
            with store.connect() as conn:
                model = from_store(conn, utcnow())
            with _lock:
                _cache[(store.url, None)] = (None, model)
                _forget_buyers(store.url, model.as_of)
            gc.freeze()
        finally:
            with _lock:
                _renewing.discard(store.url)

    threading.Thread(target=run, name="recommend-renew", daemon=True).start()


def _forget_buyers(url: str, as_of: datetime) -> None:
    """Drop the buyers read before ``as_of``: a model built then holds them (under the lock)."""
    fresh = _buyers.get(url)
    if fresh:
        _buyers[url] = {pid: found for pid, found in fresh.items() if found[0] >= as_of}


def _fresh(model: Model, max_age: float) -> bool:
    return time.monotonic() - model.built_at < max_age


def clear_cache() -> None:
    """Forget every model and stock snapshot (after a bulk import, or between tests)."""
    from surmesure.decide.recommend.inventory import clear_snapshots

    clear_snapshots()
    kept.forget()
    with _lock:
        _cache.clear()
        _buyers.clear()
