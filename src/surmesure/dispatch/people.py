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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from operator import attrgetter

from surmesure.dispatch import outbox
from surmesure.dispatch.subscribers import Delivery

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
