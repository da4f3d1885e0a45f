"""People entering a journey, in the caller's transaction: who may enter now (the re-entry rule,
the daily limit), then their first steps, a group at a time (:mod:`.columnar`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.journeys.columnar import advance
from surmesure.journeys.columns import People
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.entries import ReEntry
from surmesure.journeys.facts import batch_facts
from surmesure.journeys.writes import Applied, Stepped, apply
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.store.engine import Store


def admit(
    conn: Connection,
    definition: JourneyDefinition,
    candidates: dict[int, str | None],
    now: datetime,
) -> list[tuple[int, int, str | None]]:
    """Who of ``candidates`` (person -> product) enters now, with their entry number: the
    re-entry rule (``never``: a person enters once; ``always``: again once the last entry
    ended; ``after_days``: and at least that long after it began) and the daily limit (first
    come, by person id, among those of one batch)."""
    if not candidates:
        return []
    p = schema.journey_people
    ids = sorted(candidates)
    rows = conn.execute(
        sa.select(
            p.c.person_id,
            sa.func.max(p.c.entry).label("last"),
            sa.func.max(p.c.entered_at).label("since"),
            sa.func.sum(sa.case((p.c.status == "running", 1), else_=0)).label("running"),
        )
        .where(p.c.journey == definition.name, among_ids(p.c.person_id, ids))
        .group_by(p.c.person_id)
    )
    before = {int(r.person_id): r for r in rows}
    rule = definition.re_entry
    admitted: list[tuple[int, int, str | None]] = []
    for person in ids:
        r = before.get(person)
        if r is None:
            admitted.append((person, 1, candidates[person]))
            continue
        if rule == "never" or int(r.running or 0) > 0:
            continue
        if isinstance(rule, ReEntry) and r.since > now - timedelta(days=rule.after_days):
            continue
        admitted.append((person, int(r.last) + 1, candidates[person]))
    if definition.limit_per_day is not None and admitted:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        today = conn.execute(
            sa.select(sa.func.count())
            .select_from(p)
            .where(p.c.journey == definition.name, p.c.entered_at >= day)
        ).scalar_one()
        admitted = admitted[: max(definition.limit_per_day - int(today), 0)]
    return admitted


def enter_people(
    store: Store,
    conn: Connection,
    definition: JourneyDefinition,
    version: int,
    candidates: dict[int, str | None],
    now: datetime,
    *,
    per_person: bool = False,
) -> Applied:
    """Admit ``candidates`` (:func:`admit`) and run them through the first steps."""
    admitted = admit(conn, definition, candidates, now)
    if not admitted:
        return Applied()
    ids, entries, products = zip(*admitted, strict=True)
    people = People.entering(
        definition,
        np.asarray(ids, dtype=np.int64),
        np.asarray(entries, dtype=np.int64),
        np.asarray(products, dtype=object),
        now,
    )
    facts = batch_facts(store, conn, definition, people, now, ahead_only=True)
    groups = advance(definition, people, facts, now, None, one_by_one=per_person)
    return apply(store, conn, [Stepped(definition, version, people, groups, "entered", True)], now)
