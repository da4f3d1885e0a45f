"""The segments at a glance, from what refreshes recorded: each segment's members at its last
refresh, its size day by day (rebuilt from the entered / exited history), the overlap of
recorded memberships, and the segments a discovery saved (memberships with no definition).

Nothing here evaluates a definition: every figure is read from ``segment_members`` and
``segment_changes``, so it costs a few grouped reads whatever the definitions hold. A saved
segment never refreshed has no members yet (``refreshed_at`` is ``None``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.segment.repository import catalog
from surmesure.store import schema

#: a discovered segment's name: the discovery's prefix, then the cluster's rank
DISCOVERED = re.compile(r"^(?P<prefix>[a-z][a-z0-9_]*)_(?P<rank>\d+)$")


@dataclass(frozen=True, slots=True)
class Listed:
    """One segment: saved (``version`` set) or discovered (``version`` ``None``)."""

    name: str
    version: int | None
    description: str
    updated_at: datetime | None
    members: int
    refreshed_at: datetime | None


def listing(conn: Connection) -> list[Listed]:
    """Saved segments by name, then discovered ones by name, with their recorded members and
    the time of their last recorded change."""
    s, m, ch = schema.segments, schema.segment_members, schema.segment_changes
    saved = catalog(conn)
    rows = conn.execute(sa.select(s.c.name, s.c.version, s.c.updated_at))
    versions = {str(r.name): r for r in rows}
    counts: dict[str, int] = dict(
        conn.execute(sa.select(m.c.segment, sa.func.count()).group_by(m.c.segment)).all()
    )
    last = dict(
        conn.execute(
            sa.select(ch.c.segment, sa.func.max(ch.c.changed_at)).group_by(ch.c.segment)
        ).all()
    )
    found = [
        Listed(
            name,
            int(versions[name].version),
            saved[name].description,
            versions[name].updated_at,
            int(counts.get(name, 0)),
            last.get(name),
        )
        for name in sorted(saved)
    ]
    found += [
        Listed(str(name), None, "", None, int(counts[name]), last.get(name))
        for name in sorted(set(counts) - set(saved))
        if DISCOVERED.match(str(name))
    ]
    return found


def trend(
    conn: Connection, names: Sequence[str], days: int = 30
) -> dict[str, list[tuple[date, int]]]:
    """Each segment's size at the end of each day it changed (members entered minus exited
    since its first change), the last ``days`` such days, oldest first."""
    ch = schema.segment_changes
    day = sa.cast(ch.c.changed_at, sa.Date).label("day")
    step = sa.func.sum(sa.case((ch.c.change == "entered", 1), else_=-1))
    rows = conn.execute(
        sa.select(ch.c.segment, day, step)
        .where(ch.c.segment.in_(list(names)))
        .group_by(ch.c.segment, day)
        .order_by(ch.c.segment, day)
    )
    sizes: dict[str, list[tuple[date, int]]] = {name: [] for name in names}
    for segment, when, change in rows:
        held = sizes[str(segment)]
        held.append((when, (held[-1][1] if held else 0) + int(change)))
    return {name: points[-days:] for name, points in sizes.items()}


def overlap(conn: Connection, names: Sequence[str]) -> list[list[int]]:
    """``matrix[i][j]`` = people recorded in both segments i and j (the diagonal is each
    segment's recorded members), in one grouped read."""
    m = schema.segment_members
    a, b = m.alias("a"), m.alias("b")
    rows = conn.execute(
        sa.select(a.c.segment, b.c.segment, sa.func.count())
        .select_from(a.join(b, a.c.person_id == b.c.person_id))
        .where(a.c.segment.in_(list(names)), b.c.segment.in_(list(names)))
        .group_by(a.c.segment, b.c.segment)
    )
    place = {name: i for i, name in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for first, second, count in rows:
        matrix[place[str(first)]][place[str(second)]] = int(count)
    return matrix


def discovered_groups(listed: Sequence[Listed]) -> dict[str, list[str]]:
    """The discovered segments of ``listed`` by the prefix of their discovery, in rank order."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for item in listed:
        match = DISCOVERED.match(item.name)
        if item.version is None and match is not None:
            groups.setdefault(match["prefix"], []).append((int(match["rank"]), item.name))
    return {prefix: [n for _, n in sorted(names)] for prefix, names in sorted(groups.items())}
