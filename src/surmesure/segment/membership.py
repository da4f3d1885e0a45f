"""Who is in a segment: size, members, overlaps, and refreshes that record who came and went.

A refresh recomputes a segment in SQL into a temporary table, then in one transaction records
``entered`` for new members and ``exited`` for those who left (``segment_changes``, stamped
``now``) and brings ``segment_members`` in line, telling the people who came and went to the
dispatcher (``segment`` changes of the outbox). A refresh with no change records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.dispatch import outbox
from surmesure.domain.segments import AllNode, SegmentDefinition
from surmesure.protect import blind
from surmesure.segment.repository import catalog as saved_catalog
from surmesure.segment.repository import get
from surmesure.segment.sql import members_query
from surmesure.store import schema
from surmesure.store.engine import Store

_FRESH = sa.Table(
    "segment_fresh",
    sa.MetaData(),
    sa.Column("person_id", sa.BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class Refreshed:
    name: str
    members: int
    entered: int
    exited: int


def query(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
) -> sa.Select[Any]:
    return members_query(
        definition,
        dialect=store.dialect,
        now=now,
        half_life_days=store.settings.trait_half_life_days,
        catalog=catalog,
        index_key=blind.index_key(store),
    )


def size(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition] | None = None,
) -> int:
    """How many current persons are in ``definition`` at ``now``."""
    with store.connect() as conn:
        known = saved_catalog(conn) if catalog is None else catalog
        inner = query(store, definition, now, known).subquery()
        return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


@dataclass(frozen=True)
class Step:
    """One condition of a segment's top-level ``all`` and how many people meet it and every
    condition before it."""

    condition: dict[str, Any]
    people: int


def explain(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition] | None = None,
) -> tuple[int, list[Step]]:
    """(current persons, the count after each condition) at ``now``, the conditions of a
    top-level ``all`` taken in the order written, so the first count that drops to 0 names the
    condition that empties the segment. Any other root is one step."""
    root = definition.where
    conditions = root.all if isinstance(root, AllNode) else [root]
    with store.connect() as conn:
        known = saved_catalog(conn) if catalog is None else catalog
        everyone = conn.execute(
            sa.select(sa.func.count()).where(schema.people.c.merged_into.is_(None))
        ).scalar_one()
    steps = []
    for i, condition in enumerate(conditions):
        head = definition.model_copy(update={"where": AllNode(all=conditions[: i + 1])})
        document = condition.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        steps.append(Step(document, size(store, head, now, known)))
    return int(everyone), steps


def members(
    conn: Connection,
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
    limit: int | None = None,
) -> list[int]:
    """Person ids in ``definition``, smallest first."""
    q = query(store, definition, now, catalog).order_by(sa.text("1"))
    if limit is not None:
        q = q.limit(limit)
    return [int(r[0]) for r in conn.execute(q)]


def overlap(
    store: Store, definitions: Sequence[SegmentDefinition], now: datetime
) -> list[list[int]]:
    """``matrix[i][j]`` = persons in both i and j (the diagonal is each size)."""
    with store.connect() as conn:
        known = saved_catalog(conn)
        queries = [query(store, d, now, known) for d in definitions]
        matrix = [[0] * len(queries) for _ in queries]
        for i, a in enumerate(queries):
            for j in range(i, len(queries)):
                both = a if i == j else sa.intersect(a, queries[j])
                count = conn.execute(
                    sa.select(sa.func.count()).select_from(both.subquery())
                ).scalar_one()
                matrix[i][j] = matrix[j][i] = int(count)
    return matrix


def refresh(
    store: Store,
    names: Sequence[str] | None,
    now: datetime,
    on_done: Callable[[Refreshed], None] | None = None,
) -> list[Refreshed]:
    """Recompute the named segments (all saved ones when ``names`` is empty)."""
    with store.connect() as conn:
        known = saved_catalog(conn)
    wanted = sorted(known) if not names else list(names)
    results = []
    for name in wanted:
        if name not in known:
            with store.connect() as conn:
                get(conn, name)  # raises NotFound with its hint
        result = _refresh_one(store, known[name], now, known)
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results


def _refresh_one(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
) -> Refreshed:
    m, ch = schema.segment_members, schema.segment_changes
    name = sa.literal(definition.name, sa.String)
    at = sa.literal(now, sa.DateTime)
    with store.begin() as conn:
        _FRESH.drop(conn, checkfirst=True)
        _FRESH.create(conn)
        try:
            conn.execute(
                _FRESH.insert().from_select(["person_id"], query(store, definition, now, catalog))
            )
            fresh = sa.select(_FRESH.c.person_id)
            current = sa.select(m.c.person_id).where(m.c.segment == definition.name)
            columns = ["segment", "person_id", "change", "changed_at"]
            came = sa.select(name, _FRESH.c.person_id, sa.literal("entered"), at).where(
                _FRESH.c.person_id.not_in(current)
            )
            went = sa.select(name, m.c.person_id, sa.literal("exited"), at).where(
                m.c.segment == definition.name, m.c.person_id.not_in(fresh)
            )
            entered = _count(conn, came)
            exited = _count(conn, went)
            if entered:
                conn.execute(ch.insert().from_select(columns, came))
            if exited:
                conn.execute(ch.insert().from_select(columns, went))
                conn.execute(
                    m.delete().where(m.c.segment == definition.name, m.c.person_id.not_in(fresh))
                )
            if entered:
                conn.execute(
                    m.insert().from_select(
                        ["segment", "person_id", "entered_at"],
                        sa.select(name, _FRESH.c.person_id, at).where(
                            _FRESH.c.person_id.not_in(current)
                        ),
                    )
                )
            if entered or exited:  # the caches of decisions re-read who came and went
                moved = conn.execute(
                    sa.select(ch.c.person_id).where(
                        ch.c.segment == definition.name, ch.c.changed_at == now
                    )
                ).scalars()
                people = sorted({int(p) for p in moved})
                outbox.append(
                    store,
                    conn,
                    outbox.SEGMENT,
                    people,
                    at=utcnow(),
                    details=[definition.name] * len(people),
                )
            total = _count(conn, fresh)
        finally:
            _FRESH.drop(conn)
    return Refreshed(definition.name, total, entered, exited)


def _count(conn: Connection, select: sa.Select[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(select.subquery())).scalar_one())
