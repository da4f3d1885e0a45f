"""What a simulation replays, read from the store: the window, the events and orders a journey
names, who qualifies for entry and when, and which products are out of stock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import InvalidInput
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.entries import (
    DateEntryNode,
    EventEntryNode,
    ScheduleEntryNode,
    SegmentEntryNode,
)
from surmesure.journeys.steps import WaitForEventStep
from surmesure.journeys.timed_entries import dated_people
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json

ORDER = "Order Completed"


def _names(definition: JourneyDefinition) -> set[str]:
    names = {definition.goal.event} if definition.goal else set()
    names |= {r.event for r in definition.exit_on}
    names |= {s.wait_for_event.event for s in definition.steps if isinstance(s, WaitForEventStep)}
    if isinstance(definition.entry, EventEntryNode):
        names.add(definition.entry.event.name)
    return names


def history(
    conn: Connection, definition: JourneyDefinition, start: datetime, end: datetime
) -> list[tuple[datetime, int, str, dict[str, Any]]]:
    """``(at, person, event, properties)`` in the window, in time order: the tracked events the
    journey names and the orders."""
    e, o = schema.events, schema.orders
    rows: list[tuple[datetime, int, str, dict[str, Any]]] = []
    names = sorted(_names(definition))
    for r in conn.execute(
        sa.select(e.c.occurred_at, e.c.person_id, e.c.event, e.c.properties).where(
            e.c.type == "track",
            e.c.person_id.is_not(None),
            e.c.event.in_(names),
            e.c.occurred_at >= start,
            e.c.occurred_at < end,
        )
    ):
        properties = decode_json(r.properties) if r.properties is not None else {}
        plain = {
            k: v
            for k, v in (properties if isinstance(properties, dict) else {}).items()
            if isinstance(v, str | int | float | bool)
        }
        rows.append((r.occurred_at, int(r.person_id), str(r.event), plain))
    if ORDER in names:
        for o_row in conn.execute(
            sa.select(o.c.ordered_at, o.c.person_id).where(
                o.c.person_id.is_not(None),
                ~o.c.is_return,
                o.c.ordered_at >= start,
                o.c.ordered_at < end,
            )
        ):
            rows.append((o_row.ordered_at, int(o_row.person_id), ORDER, {}))
    rows.sort(key=lambda x: (x[0], x[1]))
    return rows


def entries(
    conn: Connection,
    definition: JourneyDefinition,
    history: list[tuple[datetime, int, str, dict[str, Any]]],
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, int, str | None]]:
    """``(at, person, product)`` of each time someone qualifies for entry, in time order."""
    entry = definition.entry
    if isinstance(entry, EventEntryNode):
        spec = entry.event
        return [
            (at, person, None if p.get("product_id") is None else str(p.get("product_id")))
            for at, person, name, p in history
            if name == spec.name and all(p.get(k) == v for k, v in spec.where.items())
        ]
    if isinstance(entry, SegmentEntryNode):
        c = schema.segment_changes
        change = "entered" if entry.segment.on == "enter" else "exited"
        rows = conn.execute(
            sa.select(c.c.changed_at, c.c.person_id)
            .where(
                c.c.segment == entry.segment.name,
                c.c.change == change,
                c.c.changed_at >= start,
                c.c.changed_at < end,
            )
            .order_by(c.c.changed_at, c.c.person_id)
        )
        return [(r[0], int(r[1]), None) for r in rows]
    if isinstance(entry, ScheduleEntryNode):
        p = schema.people
        everyone = [
            int(r[0])
            for r in conn.execute(sa.select(p.c.person_id).where(p.c.merged_into.is_(None)))
        ]
        out: list[tuple[datetime, int, str | None]] = []
        at = start
        while at < end:
            out += [(at, person, None) for person in everyone]
            at += timedelta(days=entry.schedule.every_days)
        return out
    if isinstance(entry, DateEntryNode):
        dates: list[tuple[datetime, int, str | None]] = []
        day: date = start.date()
        while datetime.combine(day, datetime.min.time()) < end:
            at = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
            dates += [(at, person, None) for person in sorted(dated_people(conn, entry, day))]
            day += timedelta(days=1)
        return dates
    raise InvalidInput(
        "A journey entered by location cannot be simulated: the store keeps no past locations.",
        field="entry",
        hint="simulate a journey entered by an event, a segment, a schedule or a date",
    )


def window(store: Store, days: int, start: datetime | None) -> tuple[datetime, datetime]:
    """The simulated window: ``days`` from ``start``, else the last ``days`` of events."""
    if start is None:
        e = schema.events
        with store.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(e.c.occurred_at))).scalar_one()
        if last is None:
            raise InvalidInput(
                "There are no events to replay.",
                field="--days",
                hint="collect or import events first (`surmesure demo` makes a demo world)",
            )
        start = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        start -= timedelta(days=days)
    return start, start + timedelta(days=days)
