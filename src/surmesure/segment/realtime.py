"""Real-time membership: after one person's event, re-evaluate in memory only the segments
that event can change, and record who entered or exited at once.

Which segments an event can change, by its kind:

- an event of type ``track``, ``page``, ``screen``, ... : segments with an ``event`` condition
  on that type (or on any type);
- ``order`` (an order or a return was recorded): segments with a ``purchase`` condition;
- ``identify`` also changes traits: segments with a ``trait`` or ``near`` condition too;

and, through references, every segment that refers to one of those.

Collect does not call this module: it appends each change to the outbox, and the dispatcher
delivers them to :func:`on_changes` (subscriber ``segment_membership``, see
:mod:`surmesure.dispatch`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import get_settings
from surmesure.dispatch import outbox
from surmesure.dispatch.subscribers import Delivery
from surmesure.domain.segments import (
    EventNode,
    NearNode,
    PurchaseNode,
    SegmentDefinition,
    TraitNode,
    walk,
)
from surmesure.segment.definitions import references
from surmesure.segment.evaluate import Evaluator
from surmesure.segment.repository import catalog as saved_catalog
from surmesure.segment.snapshot import load_snapshot, store_points, stores_named
from surmesure.store import schema
from surmesure.store.engine import Store

ORDER = "order"


@dataclass(frozen=True)
class Change:
    segment: str
    person_id: int
    change: str  # entered or exited
    at: datetime


def depends_on(definition: SegmentDefinition, event_type: str) -> bool:
    """Whether an event of ``event_type`` can change ``definition`` by itself (not through
    references)."""
    for _, leaf in walk(definition.where):
        match leaf:
            case EventNode(event=c) if event_type != ORDER and c.type in (None, event_type):
                return True
            case PurchaseNode() if event_type == ORDER:
                return True
            case TraitNode() | NearNode() if event_type == "identify":
                return True
    return False


def affected(catalog: Mapping[str, SegmentDefinition], event_type: str) -> list[str]:
    """Names of the segments an event of ``event_type`` can change, sorted."""
    found = {name for name, d in catalog.items() if depends_on(d, event_type)}
    grew = True
    while grew:
        more = {
            name
            for name, d in catalog.items()
            if name not in found and any(ref in found for _, ref in references(d))
        }
        found |= more
        grew = bool(more)
    return sorted(found)


def on_events(
    store: Store, conn: Connection, happened: Iterable[tuple[int, str]], now: datetime
) -> list[Change]:
    """:func:`on_event` for each distinct ``(person_id, event_type)`` of a batch, reading the
    saved segments once; nothing is evaluated when no segment depends on those event types
    (the collector calls this on every commit)."""
    pairs = sorted(set(happened))
    if not pairs:
        return []
    catalog = saved_catalog(conn)
    if not catalog:
        return []
    names_of = {kind: affected(catalog, kind) for kind in {k for _, k in pairs}}
    by_person: dict[int, set[str]] = {}
    for person_id, kind in pairs:
        by_person.setdefault(person_id, set()).update(names_of[kind])
    changes: list[Change] = []
    for person_id, names in by_person.items():
        if names:
            changes += _evaluate(conn, catalog, person_id, sorted(names), now)
    return changes


def on_changes(delivery: Delivery) -> int:
    """The dispatcher's handler: :func:`on_events` for the people of the events and orders
    delivered, at the time of delivery. Idempotent: a person's segments are evaluated against
    her stored membership, so a change delivered twice changes nothing the second time.
    Returns how many people entered or exited a segment."""
    happened = [
        (c.person_id, ORDER if c.kind == outbox.ORDER else c.detail)
        for c in delivery.changes
        if c.person_id is not None
        and (c.kind == outbox.ORDER or (c.kind == outbox.EVENT and c.detail is not None))
    ]
    pairs: list[tuple[int, str]] = [(p, k) for p, k in happened if k is not None]
    return len(on_events(delivery.store, delivery.conn, pairs, delivery.now))


def on_event(
    store: Store, conn: Connection, person_id: int, event_type: str, now: datetime
) -> list[Change]:
    """Re-evaluate ``person_id``'s segments that an event of ``event_type`` can change, within
    the caller's transaction ``conn``; update ``segment_members`` and record each change in
    ``segment_changes`` at ``now`` (naive UTC). Returns the changes."""
    catalog = saved_catalog(conn)
    names = affected(catalog, event_type)
    if not names:
        return []
    return _evaluate(conn, catalog, person_id, names, now)


def _evaluate(
    conn: Connection,
    catalog: Mapping[str, SegmentDefinition],
    person_id: int,
    names: list[str],
    now: datetime,
) -> list[Change]:
    places = store_points(conn, stores_named(catalog[n] for n in names))
    snapshot = load_snapshot(conn, person_id, now, get_settings().trait_half_life_days, places)
    evaluator = Evaluator(snapshot, now, catalog)
    m, ch = schema.segment_members, schema.segment_changes
    held = {
        str(r[0])
        for r in conn.execute(
            sa.select(m.c.segment).where(m.c.person_id == person_id, m.c.segment.in_(names))
        )
    }
    changes = []
    for name in names:
        inside = evaluator.segment(name)
        if inside == (name in held):
            continue
        if inside:
            conn.execute(m.insert().values(segment=name, person_id=person_id, entered_at=now))
        else:
            conn.execute(m.delete().where(m.c.segment == name, m.c.person_id == person_id))
        change = Change(name, person_id, "entered" if inside else "exited", now)
        conn.execute(
            ch.insert().values(
                segment=name, person_id=person_id, change=change.change, changed_at=now
            )
        )
        changes.append(change)
    return changes
