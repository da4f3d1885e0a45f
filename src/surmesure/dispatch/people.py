"""Who changed: a notification for the caches of this process (subscriber ``people_changed``).

A cache of per-person data (the serving view of decisions, a recommendation cache) calls
:func:`listen` with a callback; after each delivery has committed, the callback gets the ids of
the people whose events, orders or consents were just stored, so it drops or reloads those
people alone instead of polling whole tables. A callback must be quick and must not raise (an
error is logged and the delivery stands). With NATS, deliveries run in the workers: a cache in
an API process then needs a subscription of its own to the stream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from surmesure.dispatch.subscribers import Delivery

Listener = Callable[[frozenset[int]], None]
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
    with _lock:
        listeners = list(_listeners)
    if people and listeners:
        delivery.after.extend(_tell(listener, people) for listener in listeners)
    return len(people)


def _tell(listener: Listener, people: frozenset[int]) -> Callable[[], None]:
    return lambda: listener(people)
