"""Subscribers of the outbox, by name: the stages after collect, reached without importing them.

A handler takes a :class:`Delivery` (changes in order, inside the transaction that moves its
cursor) and returns how many effects it had. It must be idempotent: after a crash between its
effect and the cursor's move (a handler outside the store, a redelivery by NATS) it sees the
same changes again. Built-in handlers are named here as ``module:function`` and imported when
first delivered to, so collect, which writes the outbox, never imports a later stage.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from surmesure.dispatch.outbox import Change
from surmesure.errors import ConfigError
from surmesure.store.engine import Store


@dataclass(frozen=True, slots=True)
class Delivery:
    """Changes for one subscriber: ``conn`` is the transaction that records them delivered;
    ``now`` is the delivery time, naive UTC. What a handler puts in ``after`` runs once that
    transaction has committed (a notification that must not run ahead of the data)."""

    store: Store
    conn: Connection
    changes: Sequence[Change]
    now: datetime
    after: list[Callable[[], None]] = field(default_factory=list)


Handler = Callable[[Delivery], int]

BUILT_IN: dict[str, str] = {
    "segment_membership": "surmesure.segment.realtime:on_changes",
    "people_changed": "surmesure.dispatch.people:on_changes",
    "orders_from_events": "surmesure.collect.purchases:on_changes",
    "journeys": "surmesure.journeys.signals:on_changes",
}
"""Subscriber name -> its handler, ``module:function``."""

APPENDS = frozenset({"orders_from_events"})
"""Built-in subscribers whose effects are changes they append to the outbox (an ``order`` for
each web purchase): a drain reads again at once after a round they had effects in, so those
changes reach the other subscribers in the same round (a purchase reaches recommendations and
segments without waiting for another kick)."""

_added: dict[str, Handler] = {}
_unlisted: set[str] = set()
_loaded: dict[str, Handler] = {}


def register(name: str, handler: Handler, *, listed: bool = True) -> None:
    """Add a subscriber (a later stage, an extension). Its cursor starts at the first change
    still in the outbox. One not ``listed`` is delivered to only when named (the relay to
    NATS, which stands in for the others)."""
    _added[name] = handler
    if not listed:
        _unlisted.add(name)


def unregister(name: str) -> None:
    _added.pop(name, None)


def names() -> list[str]:
    """Every subscriber, built-in first."""
    return [*BUILT_IN, *(n for n in _added if n not in BUILT_IN and n not in _unlisted)]


def shares_transaction(name: str) -> bool:
    """Whether ``name``'s handler may run in one transaction with other subscribers', and
    run again if that transaction rolls back: the built-in ones, which keep whatever they do
    outside the store for ``after``. Any other handler gets a transaction of its own."""
    return name in BUILT_IN and name not in _added


def handler(name: str) -> Handler:
    if name in _added:
        return _added[name]
    if name not in _loaded:
        target = BUILT_IN.get(name)
        if target is None:
            raise ConfigError(
                f"No subscriber is named {name!r}.", hint=f"use one of {', '.join(names())}"
            )
        module, function = target.split(":")
        _loaded[name] = getattr(importlib.import_module(module), function)
    return _loaded[name]
