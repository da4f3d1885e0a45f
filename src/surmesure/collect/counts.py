"""How many events each identity node has of each type and name: ``event_counts``, kept with
the events themselves, so real-time segment membership reads a row per node and name rather
than every event a person ever sent (:mod:`surmesure.segment.sql`, ``counted``).

A row is ``(node_id, type, event)`` -> ``count`` and ``last_at``, the latest ``occurred_at``
counted (naive UTC); ``event`` is the events' own column (a track's event, a page's name), ``''``
for an event without one. Every event stored with a person is counted in the transaction that
stores it (:func:`add`, from :func:`surmesure.collect.events.write_events`). The rows hang off a
person as events do (``person_id`` and ``node_id``): a merge repoints them, an unmerge moves
them back by node, an erasure deletes them, with no code here. What deletes events otherwise
(retention) counts again the nodes it touched (:func:`recount`).

The contract, tested against a scan of ``events``: for every node and every ``(type, event)``,
``count`` is the number of its events of that type and name and ``last_at`` their latest time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.store import schema
from surmesure.store.engine import Store

UNNAMED = ""
"""The ``event`` of a row counting events without a name (an identify, a page unnamed)."""

_UPSERT = (
    'ON CONFLICT (node_id, type, event) DO UPDATE SET "count" = event_counts."count" + '
    'excluded."count", last_at = greatest(event_counts.last_at, excluded.last_at)'
)
"""A node's row adds the new events; its ``person_id`` is already the node's person (a merge in
this transaction repointed it before)."""


def add(
    store: Store,
    conn: Connection,
    nodes: Sequence[int],
    people: Sequence[int],
    types: Sequence[str],
    names: Sequence[str | None],
    occurred: Sequence[datetime],
) -> int:
    """Count the events given column by column (one per item, each with its node and
    person), in the caller's transaction; returns how many rows were written."""
    number: dict[tuple[int, str, str], int] = {}
    latest: dict[tuple[int, str, str], datetime] = {}
    person: dict[tuple[int, str, str], int] = {}
    for node, who, kind, name, at in zip(nodes, people, types, names, occurred, strict=True):
        key = (node, kind, UNNAMED if name is None else name)
        found = number.get(key)
        if found is None:
            number[key], latest[key], person[key] = 1, at, who
            continue
        number[key] = found + 1
        if at > latest[key]:
            latest[key] = at
    if not number:
        return 0
    keys = list(number)
    rows = pa.table(
        {
            "node_id": pa.array([k[0] for k in keys], pa.int64()),
            "type": pa.array([k[1] for k in keys], pa.string()),
            "event": pa.array([k[2] for k in keys], pa.string()),
            "person_id": pa.array(list(person.values()), pa.int64()),
            "count": pa.array(list(number.values()), pa.int64()),
            "last_at": pa.array(list(latest.values()), pa.timestamp("us")),
        }
    )
    store.backend.load(conn, schema.event_counts, rows, _UPSERT)
    return len(keys)


def counted() -> sa.Select[tuple[int, str, str, int, int, datetime]]:
    """``(node_id, type, event, person_id, count, last_at)`` of the stored events, as
    ``event_counts`` must hold them: the reference the table is checked against, and what
    :func:`recount` writes."""
    e = schema.events
    # the same text twice, not two parameters a database cannot tell are equal
    name = sa.func.coalesce(e.c.event, sa.literal_column(f"'{UNNAMED}'"))
    return (
        sa.select(
            e.c.node_id,
            e.c.type,
            name.label("event"),
            sa.func.min(e.c.person_id).label("person_id"),
            sa.func.count().label("count"),
            sa.func.max(e.c.occurred_at).label("last_at"),
        )
        .where(e.c.person_id.is_not(None), e.c.node_id.is_not(None))
        .group_by(e.c.node_id, e.c.type, name)
    )


def recount(conn: Connection, nodes: Sequence[int] | None = None) -> None:
    """Count again, from ``events``, the ``nodes`` (every node when ``None``), in the caller's
    transaction."""
    c = schema.event_counts
    query = counted()
    if nodes is None:
        conn.execute(c.delete())
    else:
        held = sorted(set(nodes))
        if not held:
            return
        conn.execute(c.delete().where(c.c.node_id.in_(held)))
        query = query.where(schema.events.c.node_id.in_(held))
    columns = ["node_id", "type", "event", "person_id", "count", "last_at"]
    conn.execute(c.insert().from_select(columns, query))
