"""Entries that come with time, not with an event: people who entered (or left) a segment
since the journey last looked (``segment_changes``), everyone on a schedule, people whose date
trait falls today. Events enter through the dispatcher (:mod:`.signals`).

Each journey's row is locked while it is read (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: one
worker does it), and records how far its entries were read (``entries_read_at``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.entering import enter_people
from surmesure.journeys.entries import DateEntryNode, ScheduleEntryNode, SegmentEntryNode
from surmesure.journeys.published import Versions, catalog
from surmesure.journeys.writes import Applied
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json


def _schedule_slot(
    conn: Connection, name: str, entry: ScheduleEntryNode, last: datetime | None, now: datetime
) -> datetime | None:
    """The scheduled time (``at``, UTC) whose entries are due now, if any: the latest at or
    before ``now``, after ``last`` (the previous slot, or the publication), and ``every_days``
    after the previous slot (the first slot after publication always runs)."""
    hour, minute = (int(x) for x in entry.schedule.at.split(":"))
    today = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    slot = today if now >= today else today - timedelta(days=1)
    if last is not None and slot <= last:
        return None
    p = schema.journey_people
    ran = conn.execute(sa.select(p.c.person_id).where(p.c.journey == name).limit(1)).first()
    if (
        ran is not None
        and last is not None
        and slot - last < timedelta(days=entry.schedule.every_days)
    ):
        return None
    return slot


def dated_people(conn: Connection, entry: DateEntryNode, today: date) -> dict[int, str | None]:
    """People whose date trait (ISO ``YYYY-MM-DD...``) falls today: its anniversary minus
    ``days_before``, or ``after_days`` after it."""
    t = schema.traits
    rows = [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(t.c.person_id, t.c.node_id, t.c.value, t.c.sealed).where(
                t.c.name == entry.date.trait, t.c.person_id.is_not(None)
            )
        )
    ]
    atrest.open_rows(conn, t, rows)  # a birth date is sealed at rest
    out: dict[int, str | None] = {}
    for row in rows:
        person, text = row["person_id"], decode_json(row["value"])
        try:
            day = date.fromisoformat(str(text)[:10])
        except ValueError:
            continue
        if entry.date.after_days is not None:
            hit = day + timedelta(days=entry.date.after_days) == today
        else:
            target = today + timedelta(days=entry.date.days_before)
            hit = (day.month, day.day) == (target.month, target.day)
        if hit:
            out[int(person)] = None
    return out


def _candidates(
    conn: Connection, definition: JourneyDefinition, last: datetime | None, now: datetime
) -> tuple[dict[int, str | None], datetime] | None:
    """Who enters the journey by time now, and how far that reads (``None``: nobody is due,
    or its entry does not come with time)."""
    entry = definition.entry
    if isinstance(entry, SegmentEntryNode):
        c = schema.segment_changes
        change = "entered" if entry.segment.on == "enter" else "exited"
        query = sa.select(c.c.person_id).where(
            c.c.segment == entry.segment.name, c.c.change == change, c.c.changed_at <= now
        )
        if last is not None:
            query = query.where(c.c.changed_at > last)
        return {int(r[0]): None for r in conn.execute(query.distinct())}, now
    if isinstance(entry, ScheduleEntryNode):
        slot = _schedule_slot(conn, definition.name, entry, last, now)
        if slot is None:
            return None
        p = schema.people
        rows = conn.execute(sa.select(p.c.person_id).where(p.c.merged_into.is_(None)))
        return {int(r[0]): None for r in rows}, slot
    if isinstance(entry, DateEntryNode):
        if last is not None and last.date() >= now.date():
            return None
        return dated_people(conn, entry, now.date()), now
    return None


def entries(store: Store, now: datetime, versions: Versions) -> Applied:
    """Enter everyone due by time now, in each active journey (see the module)."""
    result = Applied()
    j = schema.journeys
    with store.connect() as conn:
        names = catalog(conn, ("active",))
    for name in names:
        with store.begin() as conn:
            query = sa.select(j).where(j.c.name == name, j.c.status == "active")
            row = conn.execute(store.backend.lock_rows(query, skip_locked=True)).first()
            if row is None:
                continue
            definition = versions.get(conn, name, int(row.version))
            found = _candidates(conn, definition, row.entries_read_at, now)
            if found is None:
                continue
            people, read_at = found
            result.add(enter_people(store, conn, definition, int(row.version), people, now))
            conn.execute(j.update().where(j.c.name == name).values(entries_read_at=read_at))
    return result
