"""Who changed: a notification for the caches of this process (subscriber ``people_changed``).

A cache of per-person data (the serving view of decisions, a recommendation cache) calls
:func:`listen` with a callback; after each delivery has committed, the callback gets the ids of
the people whose events, orders, consents, preferences, imports or segments were just stored,
so it drops or reloads those people alone instead of polling whole tables; an erasure names
nobody (the outbox keeps no trace of the person), so it is told as :data:`ANYONE`, an empty
set: forget everyone. A derive run names nobody either: it is told to the ``metrics``
callbacks, which re-read the derived metrics of the people they hold, and nothing else. The
people who bought (``order`` changes) are also told to the ``orders`` callbacks, which keep
what recommendations know of a person's purchases. A callback must be quick and must not
raise (an
error is logged and the delivery stands). With NATS, deliveries run in the workers: they pass
the news on to the API processes' caches through Redis (:mod:`.news`).

A ``track``, ``page`` or ``screen`` event changes nothing a cache holds of its person (traits
come with ``identify``, consent choices and orders with changes of their own) but who they
are: the person it made, an identifier first seen or taken over, a merge. Its person is news
only then (:func:`_quiet`), so a page's views and clicks (``Promotion Viewed``, ``Promotion
Clicked``) and a visitor's pages cost no re-read. The segments a round of events moves people
in or out of tell those people themselves (:func:`tell`, from
:mod:`surmesure.segment.realtime`), whatever event made the round: a window's end may move
someone on an event no segment names. (A template whose rules read events is decided from the
store, never from a cache.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from datetime import datetime
from operator import attrgetter

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.dispatch import outbox
from surmesure.dispatch.subscribers import Delivery
from surmesure.store import schema
from surmesure.store.among import among_ids

Listener = Callable[[frozenset[int]], None]
MetricsListener = Callable[[], None]
OrdersListener = Callable[[frozenset[int]], None]
ANYONE: frozenset[int] = frozenset()
"""What a listener is told after an erasure: anyone may be gone."""
_listeners: list[Listener] = []
_metrics_listeners: list[MetricsListener] = []
_orders_listeners: list[OrdersListener] = []
_lock = threading.Lock()


def listen(
    callback: Listener,
    *,
    metrics: MetricsListener | None = None,
    orders: OrdersListener | None = None,
) -> Callable[[], None]:
    """Call ``callback(person ids)`` after each delivery that names people, ``metrics()``
    after each that brings a derive run's metrics and ``orders(person ids)`` after each that
    brings orders (with the people who bought); returns what stops them."""
    with _lock:
        _listeners.append(callback)
        if metrics is not None:
            _metrics_listeners.append(metrics)
        if orders is not None:
            _orders_listeners.append(orders)

    def stop() -> None:
        with _lock:
            if callback in _listeners:
                _listeners.remove(callback)
            if metrics is not None and metrics in _metrics_listeners:
                _metrics_listeners.remove(metrics)
            if orders is not None and orders in _orders_listeners:
                _orders_listeners.remove(orders)

    return stop


_PERSON = attrgetter("person_id")
_KIND = attrgetter("kind")
_NOBODY = frozenset([None])


def on_changes(delivery: Delivery) -> int:
    """The handler: the people of the delivered changes, and whether a derive run stored
    metrics, told after the commit; returns how many people (and runs)."""
    # a round delivers thousands of changes: two passes in C rather than three in Python
    people = frozenset(map(_PERSON, delivery.changes)) - _NOBODY
    kinds = set(map(_KIND, delivery.changes))
    if outbox.EVENT in kinds:
        people -= _quiet(delivery)
    erased, derived = outbox.ERASURE in kinds, outbox.METRICS in kinds
    buyers = (
        frozenset(c.person_id for c in delivery.changes if c.kind == outbox.ORDER and c.person_id)
        if outbox.ORDER in kinds
        else ANYONE
    )
    with _lock:
        listeners = list(_listeners)
        metrics_listeners = list(_metrics_listeners) if derived else []
        orders_listeners = list(_orders_listeners) if buyers else []
    told = [people] if people else []
    if erased:
        told.append(ANYONE)
    for news in told:
        delivery.after.extend(_tell(listener, news) for listener in listeners)
    delivery.after.extend(metrics_listeners)
    delivery.after.extend(_tell(listener, buyers) for listener in orders_listeners)
    return len(people) + erased + derived


def _tell(listener: Listener, people: frozenset[int]) -> Callable[[], None]:
    return lambda: listener(people)


def tell(delivery: Delivery, person_ids: Collection[int]) -> None:
    """Tell the listeners that ``person_ids`` changed once ``delivery`` has committed: a
    later stage's own news of what it wrote (the people a round moved in or out of a
    segment)."""
    if not person_ids:
        return
    with _lock:
        listeners = list(_listeners)
    news = frozenset(person_ids)
    delivery.after.extend(_tell(listener, news) for listener in listeners)


QUIET = frozenset({"track", "page", "screen"})
"""The event types that change nothing a cache holds of their person but who they are."""
_BATCH = 5_000  # people per statement that looks for their new identities


def _quiet(delivery: Delivery) -> frozenset[int]:
    """The people ``delivery`` names only by events of the :data:`QUIET` types that changed
    nobody's identity (:func:`_renamed`) since the first of those events was stored."""
    tracked: dict[int, datetime] = {}
    for c in delivery.changes:
        if c.kind == outbox.EVENT and c.detail in QUIET and c.person_id is not None:
            first = tracked.get(c.person_id)
            if first is None or c.at < first:
                tracked[c.person_id] = c.at
    if not tracked:
        return frozenset()
    named = {
        c.person_id for c in delivery.changes if c.kind != outbox.EVENT or c.detail not in QUIET
    }
    quiet = sorted(tracked.keys() - named)
    if not quiet:
        return frozenset()
    since = min(tracked[p] for p in quiet)
    renamed: set[int] = set()
    for start in range(0, len(quiet), _BATCH):
        renamed |= _renamed(delivery.conn, quiet[start : start + _BATCH], since)
    return frozenset(quiet) - renamed


def _renamed(conn: Connection, person_ids: list[int], since: datetime) -> set[int]:
    """Of ``person_ids``, those with an identifier first seen (a new person's are all new),
    someone merged into them, or an identifier taken from its holder by claim only (the
    displaced holder's claim names them), at ``since`` or later. The ids are bound as one
    list in each branch (:func:`~surmesure.store.among.among_ids`): 5,000 of them bound one
    parameter each cost DuckDB 200 ms of CPU, a round's dispatch more than its segments."""
    i, m, c = schema.identifiers, schema.merges, schema.identity_claims
    query = sa.union(
        sa.select(i.c.person_id).where(
            among_ids(i.c.person_id, person_ids), i.c.first_seen_at >= since
        ),
        sa.select(m.c.survivor_id).where(
            among_ids(m.c.survivor_id, person_ids), m.c.merged_at >= since
        ),
        sa.select(c.c.holder_id).where(
            among_ids(c.c.holder_id, person_ids), c.c.claimed_at >= since
        ),
    )
    return {int(p) for p in conn.execute(query).scalars()}
