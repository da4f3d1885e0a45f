"""Real-time membership: after people's events, re-evaluate only the segments those events
can change, for those people only, and record who entered or exited at once.

Which segments an event can change, by its kind:

- an event of type ``track``, ``page``, ``screen``, ... : segments with an ``event`` condition
  on that type (or on any type);
- ``order`` (an order or a return was recorded): segments with a ``purchase`` condition;
- ``identify`` also changes traits: segments with a ``trait`` or ``near`` condition too;
- ``consent`` (a consent choice was recorded): segments with a ``consent`` condition;
- ``identity`` (a merge was undone: every row of the absorbed side moved): every segment;

and, through references, every segment that refers to one of those.

A round reads an event condition with no window and no property from the counts collect keeps
per identity node, type and name (``event_counts``), so its cost follows the people it touches,
not every event ever stored.

Collect does not call this module: it appends each change to the outbox, and the dispatcher
delivers them to :func:`on_changes` (subscriber ``segment_membership``, see
:mod:`surmesure.dispatch`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.dispatch import outbox
from surmesure.dispatch.people import tell
from surmesure.dispatch.subscribers import Delivery
from surmesure.domain.segments import (
    ConsentNode,
    EventNode,
    NearNode,
    PurchaseNode,
    SegmentDefinition,
    TraitNode,
    walk,
)
from surmesure.protect import blind
from surmesure.segment.definitions import references
from surmesure.segment.sql import members_query, time_names, times
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json

ORDER = "order"
CONSENT = "consent"
IDENTITY = "identity"


@dataclass(frozen=True)
class Change:
    segment: str
    person_id: int
    change: str  # entered or exited
    at: datetime


def depends_on(definition: SegmentDefinition, event_type: str) -> bool:
    """Whether an event of ``event_type`` can change ``definition`` by itself (not through
    references)."""
    if event_type == IDENTITY:  # each side of an unmerge holds other rows than before
        return True
    for _, leaf in walk(definition.where):
        match leaf:
            case EventNode(event=c) if event_type not in (ORDER, CONSENT) and c.type in (
                None,
                event_type,
            ):
                return True
            case PurchaseNode() if event_type == ORDER:
                return True
            case TraitNode() | NearNode() if event_type == "identify":
                return True
            case ConsentNode() if event_type == CONSENT:
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
    """Re-evaluate, for each distinct ``(person_id, event_type)`` of a batch, the segments an
    event of that type can change, for those people only, within the caller's transaction
    ``conn``: one SQL statement for all those segments (a branch a segment:
    :func:`surmesure.segment.sql.members_query` with ``among``), whatever the number of
    people. Updates ``segment_members`` and records each
    change in ``segment_changes`` at ``now`` (naive UTC). Returns the changes, by segment
    then person; nothing is evaluated when no segment depends on those event types."""
    people_of_kind: dict[str, set[int]] = {}
    for person, kind in happened:
        people_of_kind.setdefault(kind, set()).add(person)
    return _on_people(store, conn, people_of_kind, now)


def _on_people(
    store: Store, conn: Connection, people_of_kind: Mapping[str, set[int]], now: datetime
) -> list[Change]:
    """:func:`on_events` for the people of each event type."""
    if not people_of_kind:
        return []
    plans = _plans(store, conn)
    catalog = plans.catalog
    if not catalog:
        return []
    touched: dict[str, set[int]] = {}
    for kind, people in people_of_kind.items():
        for name in affected(catalog, kind):
            touched.setdefault(name, set()).update(people)
    if not touched:
        return []
    names = tuple(sorted(touched))
    rows = {
        "segment": pa.array([name for name in names for _ in touched[name]], pa.string()),
        "person_id": pa.array([p for name in names for p in touched[name]], pa.int64()),
    }
    with store.backend.scratch(conn, _TOUCHED, pa.table(rows)):
        changes = _settle(conn, plans.moved(names), names, now)
    _record(store, conn, changes, now)
    return changes


_TOUCHED = sa.Table(
    "realtime_touched",
    sa.MetaData(),
    sa.Column("segment", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, primary_key=True),
    prefixes=["TEMPORARY"],
)


_Moved = sa.Select[int, Any, bool] | sa.CompoundSelect[int, Any, bool]
"""``(segment, person_id, entered)`` of who enters or exits the segments of a round, the
segment by its place in the round's names."""


class _Plans:
    """The saved segments of one catalog and, compiled once per set of segments a round
    touches, the statement of who enters or exits them among the touched people (``now``
    bound at execution)."""

    def __init__(self, store: Store, catalog: dict[str, SegmentDefinition]):
        self.catalog = catalog
        self.dialect = store.dialect
        self.half_life_days = store.settings.trait_half_life_days
        self.index_key = blind.index_key(store)
        self._moved: dict[tuple[str, ...], tuple[_Moved, tuple[str, ...]]] = {}

    def moved(self, names: tuple[str, ...]) -> tuple[_Moved, tuple[str, ...]]:
        """``(k, person_id, entered)`` of each touched person whose membership of
        ``names[k]`` differs from its definition, in one statement for all of ``names`` (a
        statement costs DuckDB milliseconds however few its rows), with the names of the
        statement's time parameters."""
        found = self._moved.get(names)
        if found is None:
            if len(self._moved) >= _CACHE_SIZE * 4:  # rounds touch a few sets of segments
                self._moved.clear()
            branches = [self._compile(name, k) for k, name in enumerate(names)]
            statement = branches[0] if len(branches) == 1 else sa.union_all(*branches)
            found = self._moved[names] = (statement, time_names(statement))
        return found

    def _compile(self, name: str, k: int) -> sa.Select[int, Any, bool]:
        m, t = schema.segment_members, _TOUCHED
        among = sa.select(t.c.person_id).where(t.c.segment == name)
        inside = members_query(
            self.catalog[name],
            dialect=self.dialect,
            now=datetime(2000, 1, 1),  # a placeholder: the round's time is bound at execution
            half_life_days=self.half_life_days,
            catalog=self.catalog,
            index_key=self.index_key,
            among=among,
            named_times=True,
            counted=True,  # a count per node and name, not every event (collect.counts)
        )
        held_query = sa.select(m.c.person_id).where(m.c.segment == name, m.c.person_id.in_(among))
        # only who enters or exits comes back: most of the touched people stay as they were,
        # and reading both sides whole to compare them here took the handler's time
        fresh, held = inside.subquery(f"fresh_{k}"), held_query.subquery(f"held_{k}")
        fresh_id, held_id = next(iter(fresh.c)), held.c.person_id
        return (
            sa.select(
                sa.literal_column(str(k), sa.Integer).label("k"),
                sa.func.coalesce(fresh_id, held_id).label("person_id"),
                held_id.is_(None).label("entered"),
            )
            .select_from(fresh.join(held, fresh_id == held_id, full=True))
            .where(sa.or_(fresh_id.is_(None), held_id.is_(None)))
        )


_CACHE: dict[tuple[Any, ...], _Plans] = {}
_CACHE_SIZE = 16


def _plans(store: Store, conn: Connection) -> _Plans:
    """The compiled plans of the segments saved in ``conn``'s database, kept while their
    definitions and the store's settings stay the same (keyed by the definitions' text, so a
    new version, or another database, gets its own)."""
    s, v = schema.segments, schema.segment_versions
    rows = conn.execute(
        sa.select(s.c.name, v.c.definition).select_from(
            s.join(v, sa.and_(v.c.name == s.c.name, v.c.version == s.c.version))
        )
    ).all()
    definitions = sorted((str(name), decode_json(d)) for name, d in rows)
    key = (
        store.dialect,
        store.settings.trait_half_life_days,
        blind.index_key(store),
        tuple((name, orjson.dumps(d, option=orjson.OPT_SORT_KEYS)) for name, d in definitions),
    )
    found = _CACHE.get(key)
    if found is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        catalog = {name: SegmentDefinition.model_validate(d) for name, d in definitions}
        found = _CACHE[key] = _Plans(store, catalog)
    return found


def _settle(
    conn: Connection,
    moved: tuple[_Moved, tuple[str, ...]],
    names: tuple[str, ...],
    now: datetime,
) -> list[Change]:
    """Who enters or exits each of ``names`` among the touched people, by segment then
    person (``moved``: :meth:`_Plans.moved`); the exits are deleted from the members, the
    entries are left to :func:`_record`. (A segment's branch reads its own members only: the
    definitions it refers to are inlined.)"""
    m = schema.segment_members
    statement, params = moved
    found: list[list[tuple[int, bool]]] = [[] for _ in names]
    for k, person, entered in conn.execute(statement, times(params, now)).all():
        found[k].append((int(person), bool(entered)))
    changes: list[Change] = []
    for name, moves in zip(names, found, strict=True):
        if not moves:
            continue
        moves.sort()
        changes += [Change(name, p, "entered" if e else "exited", now) for p, e in moves]
        went = [p for p, e in moves if not e]
        if went:  # rare (most rounds bring people in): one statement a segment is cheap
            conn.execute(m.delete().where(m.c.segment == name, m.c.person_id.in_(went)))
    return changes


def _record(store: Store, conn: Connection, changes: list[Change], now: datetime) -> None:
    """Add the people who entered to their segments' members and record every change, each
    in one statement for every segment of the round (a statement costs DuckDB a few
    milliseconds however few its rows)."""
    came = [c for c in changes if c.change == "entered"]
    if came:
        store.bulk_insert(
            conn,
            schema.segment_members,
            pa.table(
                {
                    "segment": [c.segment for c in came],
                    "person_id": pa.array([c.person_id for c in came], pa.int64()),
                    "entered_at": pa.array([now] * len(came), pa.timestamp("us")),
                }
            ),
        )
    if changes:
        store.bulk_insert(
            conn,
            schema.segment_changes,
            pa.table(
                {
                    "segment": [c.segment for c in changes],
                    "person_id": pa.array([c.person_id for c in changes], pa.int64()),
                    "change": [c.change for c in changes],
                    "changed_at": pa.array([now] * len(changes), pa.timestamp("us")),
                }
            ),
            on_conflict="error",
        )


def on_changes(delivery: Delivery) -> int:
    """The dispatcher's handler: :func:`on_events` for the people of the events, orders,
    consent choices and unmerges delivered, at the time of delivery. Idempotent: a person's
    segments are evaluated against her stored membership, so a change delivered twice changes
    nothing the second time. Those who entered or exited are told to the caches of people
    (:func:`surmesure.dispatch.people.tell`) once the delivery has committed.
    Returns how many people entered or exited a segment."""
    people_of_kind: dict[str, set[int]] = {}
    for change in delivery.changes:  # one pass: a round delivers thousands
        if change.person_id is None:
            continue
        kind = _KINDS.get(change.kind)
        if kind is None:
            if change.kind != outbox.EVENT or not change.detail:
                continue
            kind = str(change.detail)
        people = people_of_kind.get(kind)
        if people is None:
            people = people_of_kind[kind] = set()
        people.add(change.person_id)
    moved = _on_people(delivery.store, delivery.conn, people_of_kind, delivery.now)
    tell(delivery, {c.person_id for c in moved})
    return len(moved)


_KINDS = {outbox.ORDER: ORDER, outbox.CONSENT: CONSENT, outbox.IDENTITY: IDENTITY}
"""The event type (for :func:`affected`) of each kind of change other than an event."""


def on_event(
    store: Store, conn: Connection, person_id: int, event_type: str, now: datetime
) -> list[Change]:
    """:func:`on_events` for one event of ``person_id``."""
    return on_events(store, conn, [(person_id, event_type)], now)
