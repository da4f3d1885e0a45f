"""Moving people through journeys in the store, in batches: due timers here, entries in
:mod:`.entering`, signals for people in flight in :mod:`.rerouting`, with the reading they share.

Each batch is one transaction: the rows are read (on PostgreSQL locked, ``FOR UPDATE SKIP
LOCKED`` for the timers, so several workers share the work and never step the same person
twice; on DuckDB fetched as columns), what the engine needs of the people is read for the whole
batch (:mod:`.facts`), the people alike go through the pure step function a group at a time
(:mod:`.columnar`; one by one with ``per_person``, the reference), and the new states, the log,
the messages the steps send and the webhook calls are written before the commit
(:mod:`.writes`, which says why a send leaves once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.journeys import engine
from surmesure.journeys.columnar import advance
from surmesure.journeys.columns import People
from surmesure.journeys.facts import batch_facts
from surmesure.journeys.published import Versions
from surmesure.journeys.writes import Applied, Stepped, apply
from surmesure.store import schema
from surmesure.store.engine import Store

BATCH = 20_000
"""Most people stepped in one transaction."""

_STATE = ("person_id", "entry", "step", "status", "entered_at", "due_at", "product", "held")


def state_columns(p: sa.Table) -> list[sa.Column[Any]]:
    """The columns a state is read from: ``journey``, ``version``, then those of
    :meth:`.columnar.People.from_rows`."""
    return [p.c.journey, p.c.version, *(p.c[name] for name in _STATE)]


def read_people(store: Store, conn: Connection, query: sa.Select[Any]) -> list[Sequence[Any]]:
    """The columns of ``query`` (of :func:`state_columns`), fetched as NumPy arrays on
    DuckDB (times as ``datetime``, NULL as ``None``), from rows elsewhere."""
    return store.backend.fetch_columns(conn, query)


def by_version(columns: Sequence[Sequence[Any]]) -> list[tuple[tuple[str, int], People]]:
    """Columns of :func:`state_columns` as people, by journey version."""
    if not columns:
        return []
    journeys, versions = columns[0], columns[1]
    everyone = People.from_columns(columns[2:])
    pairs = sorted({(str(j), int(v)) for j, v in zip(journeys, versions, strict=True)})
    if len(pairs) == 1:
        return [(pairs[0], everyone)]
    names = np.asarray(journeys, dtype=object)
    numbers = np.asarray(versions)
    return [
        (pair, everyone.take(np.flatnonzero((names == pair[0]) & (numbers == pair[1]))))
        for pair in pairs
    ]


def tick(
    store: Store, now: datetime, versions: Versions, limit: int = BATCH, *, per_person: bool = False
) -> Applied:
    """Step one batch of people whose pause has ended (active journeys), in one transaction:
    people alike in a group at a time (:mod:`.columnar`), or one by one (``per_person``, the
    reference)."""
    p, j = schema.journey_people, schema.journeys
    active = sa.select(j.c.name).where(j.c.status.in_(("active", "archived")))
    with store.connect() as conn:
        first = conn.execute(
            sa.select(sa.func.min(p.c.due_at)).where(p.c.status == "running")
        ).scalar_one()
    if first is None or first > now:
        return Applied()  # nothing due: no transaction
    query = (
        sa.select(*state_columns(p))
        .where(p.c.status == "running", p.c.due_at <= now, p.c.journey.in_(active))
        .order_by(p.c.due_at)
        .limit(limit)
    )
    query = store.backend.lock_rows(query, skip_locked=True, of=p)
    with store.begin() as conn:
        columns = read_people(store, conn, query)
        batches = []
        for (name, version), people in by_version(columns):
            definition = versions.get(conn, name, version)
            facts = batch_facts(store, conn, definition, people, now, ahead_only=True)
            groups = advance(definition, people, facts, now, engine.Tick(), one_by_one=per_person)
            batches.append(Stepped(definition, version, people, groups, "timer"))
        result = apply(store, conn, batches, now)
        result.stepped = len(columns[0]) if columns else 0
        return result
