"""Collected changes turned into journey signals and entries (dispatch subscriber ``journeys``).

For the changes the dispatcher delivers, in order and inside its transaction (so a change
moves people once even when delivered again after a crash: the state it moved is committed
with the cursor):

- an event (``track``): an :class:`~.engine.Event` for each running journey of the person (a
  goal or exit event ends it, an awaited event moves it on); with ``latitude`` and
  ``longitude`` among its properties, also a :class:`~.engine.Location` at the distance to the
  nearest store; then it enters the person into the journeys whose entry is that event (its
  properties equal to the entry's ``where``; its ``product_id`` becomes the person's product),
  or a location near enough to a store;
- an order (imported or collected): ``Order Completed``;
- a consent choice: a person who now refuses marketing by e-mail leaves every journey at once
  (:class:`~.engine.ConsentWithdrawn`).

People already in journeys get their signals before new entries are made, so an entry event
does not move the entry it starts. Only the people of the changes who are in a journey are
given signals (the others have nothing to move), and the definitions of the journey versions
are read once per store (they never change): a round of new visitors costs the reads that find
them and their entries, not a lookup of journeys they are not in.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.dispatch import outbox
from surmesure.dispatch.subscribers import Delivery
from surmesure.journeys import engine, webhooks
from surmesure.journeys.engine import Signal
from surmesure.journeys.entering import enter_people
from surmesure.journeys.entries import EventEntryNode, NearEntryNode
from surmesure.journeys.published import Versions, catalog
from surmesure.journeys.rerouting import signal
from surmesure.journeys.writes import Applied
from surmesure.protect import consent
from surmesure.segment.evaluate import haversine_km
from surmesure.store import schema
from surmesure.store.among import among_ids, among_texts
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json


def _events(
    conn: Connection, refs: Sequence[str], names: frozenset[str] | None = None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """``message_id -> (event name, properties)`` of the tracked events among ``refs`` (only
    those named one of ``names`` when given)."""
    if not refs or (names is not None and not names):
        return {}
    e = schema.events
    query = sa.select(e.c.message_id, e.c.event, e.c.properties).where(
        among_texts(e.c.message_id, refs), e.c.event.is_not(None)
    )
    if names is not None:
        query = query.where(e.c.event.in_(sorted(names)))
    rows = conn.execute(query)
    out = {}
    for r in rows:
        properties = decode_json(r.properties) if r.properties is not None else {}
        out[str(r.message_id)] = (str(r.event), properties if isinstance(properties, dict) else {})
    return out


def _scalars(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if isinstance(v, str | int | float | bool)}


def nearest_store_km(conn: Connection, latitude: float, longitude: float) -> float | None:
    s = schema.stores
    rows = conn.execute(
        sa.select(s.c.latitude, s.c.longitude).where(
            s.c.latitude.is_not(None), s.c.longitude.is_not(None)
        )
    )
    distances = [haversine_km((latitude, longitude), (r[0], r[1])) for r in rows]
    return min(distances) if distances else None


def _location(conn: Connection, properties: dict[str, Any]) -> float | None:
    lat, lon = properties.get("latitude"), properties.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    return nearest_store_km(conn, float(lat), float(lon))


def _withdrawn(conn: Connection, people: set[int], now: datetime) -> set[int]:
    if not people:
        return set()
    query = consent.refused_people("marketing", "email", now, sorted(people))
    return {int(r[0]) for r in conn.execute(query)}


def handle(
    store: Store, conn: Connection, changes: Sequence[outbox.Change], now: datetime
) -> Applied:
    """Signals and entries for ``changes`` (see the module), in the caller's transaction.

    Only what can matter is read: every event of a person in a journey, and of the others only
    the events an active journey's entry names (any event with a place, when an entry waits
    near a store), known by the name each change carries. With no journey at all, nobody is
    in one and the round reads nothing more than the catalog of journeys."""
    versions = _versions(store)
    journeys = catalog(conn)
    active = [
        (name, version, versions.get(conn, name, version))
        for name, (status, version) in journeys.items()
        if status == "active"
    ]
    entries = frozenset(
        d.entry.event.name for _, _, d in active if isinstance(d.entry, EventEntryNode)
    )
    near = any(isinstance(d.entry, NearEntryNode) for _, _, d in active)
    # journeys are never deleted: with none, nobody can be in one
    running = (
        _running(conn, {c.person_id for c in changes if c.person_id is not None})
        if journeys
        else set()
    )
    if not running and not entries and not near:
        return Applied()
    theirs = [str(c.ref) for c in changes if c.person_id in running and c.kind == outbox.EVENT]
    mine = set(theirs)
    # a change stored before names were kept (none) may be any event
    named = None if near else entries | {None}
    others = sorted(
        {
            str(c.ref)
            for c in changes
            if c.kind == outbox.EVENT
            and c.ref
            and c.person_id
            and (named is None or c.name in named)
        }
        - mine
    )
    events = _events(conn, theirs) | _events(conn, others, None if near else entries)
    signals: list[tuple[int, Signal, str]] = []
    seen: list[tuple[int, str, dict[str, Any], float | None]] = []
    consenting: set[int] = set()
    for change in changes:
        person = change.person_id
        if person is None:
            continue
        moving = person in running
        if change.kind == outbox.EVENT and change.ref in events:
            name, properties = events[str(change.ref)]
            plain = _scalars(properties)
            distance = _location(conn, properties)
            if moving:
                signals.append((person, engine.Event(name, plain), f"event: {name}"))
                if distance is not None:
                    signals.append((person, engine.Location(distance), "location"))
            seen.append((person, name, plain, distance))
        elif change.kind == outbox.ORDER and moving:
            signals.append((person, engine.Event("Order Completed"), "order"))
        elif change.kind == outbox.CONSENT and moving:
            consenting.add(person)
    for person in sorted(_withdrawn(conn, consenting, now)):
        signals.append((person, engine.ConsentWithdrawn(), "consent withdrawn"))
    result = signal(store, conn, signals, now, versions)
    for _, version, definition in active:
        entry = definition.entry
        candidates: dict[int, str | None] = {}
        for person, event, properties, distance in seen:
            if isinstance(entry, EventEntryNode):
                wanted = entry.event
                if event == wanted.name and all(
                    properties.get(k) == v for k, v in wanted.where.items()
                ):
                    product = properties.get("product_id")
                    candidates[person] = None if product is None else str(product)
            elif (
                isinstance(entry, NearEntryNode)
                and distance is not None
                and distance <= entry.near.radius_km
            ):
                candidates.setdefault(person, None)
        if candidates:
            current = _current(conn, candidates)
            kept = {p: v for p, v in candidates.items() if p in current}
            result.add(enter_people(store, conn, definition, version, kept, now))
    return result


_KNOWN: weakref.WeakKeyDictionary[Store, Versions] = weakref.WeakKeyDictionary()


def _versions(store: Store) -> Versions:
    """The journey versions read so far from ``store``, kept from one round to the next."""
    known = _KNOWN.get(store)
    if known is None:
        known = _KNOWN[store] = Versions()
    return known


def _running(conn: Connection, people: set[int]) -> set[int]:
    """Those of ``people`` in a journey now."""
    if not people:
        return set()
    p = schema.journey_people
    rows = conn.execute(
        sa.select(p.c.person_id)
        .where(p.c.status == "running", among_ids(p.c.person_id, sorted(people)))
        .distinct()
    )
    return {int(r[0]) for r in rows}


def _current(conn: Connection, people: dict[int, str | None]) -> set[int]:
    p = schema.people
    rows = conn.execute(
        sa.select(p.c.person_id).where(
            among_ids(p.c.person_id, list(people)), p.c.merged_into.is_(None)
        )
    )
    return {int(r[0]) for r in rows}


def on_changes(delivery: Delivery) -> int:
    """The dispatcher's handler; returns how many steps people went through. The webhook calls
    planned are made once the transaction has committed (a worker round makes those left)."""
    store, now = delivery.store, delivery.now
    result = handle(store, delivery.conn, delivery.changes, now)
    if result.webhooks:
        planned = list(result.webhooks)

        def call() -> None:
            webhooks.deliver(store, now, ids=planned)

        delivery.after.append(call)
    return result.transitions
