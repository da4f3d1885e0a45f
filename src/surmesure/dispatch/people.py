"""Who changed: a notification for the caches of this process (subscriber ``people_changed``).

A cache of per-person data (the serving view of decisions, a recommendation cache) calls
:func:`listen` with a callback; after each delivery has committed, the callback gets the ids of
the people whose events, orders, consents, preferences, imports or segments were just stored,
so it drops or reloads those people alone instead of polling whole tables; an erasure names
nobody (the outbox keeps no trace of the person), so it is told as :data:`ANYONE`, an empty
set: forget everyone. A callback must be quick and must not raise (an
error is logged and the delivery stands). With NATS, deliveries run in the workers: they pass
the news on to the API processes' caches through Redis (:mod:`.news`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from surmesure.dispatch import outbox
from surmesure.dispatch.subscribers import Delivery

Listener = Callable[[frozenset[int]], None]
ANYONE: frozenset[int] = frozenset()
"""What a listener is told after an erasure: anyone may be gone."""
_listeners: list[Listener] = []
_lock = threading.Lock()


def listen(callback: Listener) -> Callable[[], None]:
    """Call ``callback(person ids)`` after each delivery; returns what stops it."""
    with _lock:
        _listeners.append(callback)

    def stop() -> None:
        with _lock:
            if callback in _listeners:
                _listeners.remove(callback)

    return stop


def on_changes(delivery: Delivery) -> int:
    """The handler: the people of the delivered changes, told after the commit; returns how
    many people."""
    people = frozenset(c.person_id for c in delivery.changes if c.person_id is not None)
    erased = any(c.kind == outbox.ERASURE for c in delivery.changes)
    with _lock:
        listeners = list(_listeners)
    told = [people] if people else []
    if erased:
        told.append(ANYONE)
    for news in told:
        delivery.after.extend(_tell(listener, news) for listener in listeners)
    return len(people) + erased


def _tell(listener: Listener, people: frozenset[int]) -> Callable[[], None]:
    return lambda: listener(people)
