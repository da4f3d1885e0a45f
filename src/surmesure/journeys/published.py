"""Journeys as published: references checked against what exists, versions, and the status
of each journey (``active``: people enter and move; ``paused``: nobody enters or moves, their
timers keep; ``archived``: nobody enters, the people in flight finish on their version).

A journey names segments, templates and events; each must exist when it is published: a
segment saved, a template in the library, an event either of Segment's specs (e-commerce,
e-mail) or already collected. Publishing an unchanged document adds no version; a changed one
adds a version that new entries follow, while people in flight stay on theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.library import library_for
from surmesure.documents import read_document
from surmesure.domain.segments import SegmentNode, walk
from surmesure.errors import InvalidInput, NotFound, SurmesureError
from surmesure.journeys.document import JourneyDefinition, parse
from surmesure.journeys.entries import EventEntryNode, SegmentEntryNode
from surmesure.journeys.steps import BranchStep, SendStep, WaitForEventStep
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.versions import add_version
from surmesure.unify.profile import decode_json

SPEC_EVENTS = frozenset(
    {
        "Order Completed",
        "Order Refunded",
        "Order Cancelled",
        "Product Viewed",
        "Product Added",
        "Product Removed",
        "Cart Viewed",
        "Checkout Started",
        "Products Searched",
        "Product List Viewed",
        "Signed Up",
        "Email Opened",
        "Email Link Clicked",
        "Unsubscribed",
        "Store Visited",
        "Location Updated",
    }
)
"""Events a journey may name before any was collected (Segment's e-commerce and e-mail specs,
and the location events of the mobile SDKs)."""

STATUSES = ("active", "paused", "archived")


def load_file(path: Path) -> JourneyDefinition:
    return parse(read_document(path))


def _events(definition: JourneyDefinition) -> Iterator[tuple[str, str]]:
    """Every event the journey names, with its place."""
    if isinstance(definition.entry, EventEntryNode):
        yield "entry.event.name", definition.entry.event.name
    if definition.goal is not None:
        yield "goal.event", definition.goal.event
    for i, rule in enumerate(definition.exit_on):
        yield f"exit_on[{i}].event", rule.event
    for i, step in enumerate(definition.steps):
        if isinstance(step, WaitForEventStep) and step.wait_for_event.near_km is None:
            yield f"steps[{i}].wait_for_event.event", step.wait_for_event.event


def _segments(definition: JourneyDefinition) -> Iterator[tuple[str, str]]:
    if isinstance(definition.entry, SegmentEntryNode):
        yield "entry.segment.name", definition.entry.segment.name
    for i, step in enumerate(definition.steps):
        if isinstance(step, BranchStep):
            for path, leaf in walk(step.branch.if_, f"steps[{i}].branch.if"):
                if isinstance(leaf, SegmentNode):
                    yield path, leaf.segment


def check_references(conn: Connection, definition: JourneyDefinition) -> None:
    """Refuse a segment, template or event that does not exist, naming its place."""
    saved = {str(r[0]) for r in conn.execute(sa.select(schema.segments.c.name))}
    for place, name in _segments(definition):
        if name not in saved:
            raise InvalidInput(
                f"{place}: unknown segment {name!r}.",
                field=place,
                hint="save it first (`surmesure segment save FILE`), or check the name",
            )
    names = [n for _, n in _events(definition) if n not in SPEC_EVENTS]
    seen: set[str] = set()
    if names:
        e = schema.events
        seen = {
            str(r[0])
            for r in conn.execute(sa.select(e.c.event).where(e.c.event.in_(names)).distinct())
        }
    for place, name in _events(definition):
        if name not in SPEC_EVENTS and name not in seen:
            raise InvalidInput(
                f"{place}: unknown event {name!r}: none was collected and no spec names it.",
                field=place,
                hint="check its spelling (events are named like `Order Completed`), or "
                "collect one first",
            )
    library = None
    for i, step in enumerate(definition.steps):
        if not isinstance(step, SendStep):
            continue
        for channel, content in step.send.channels.items():
            if content.template is None:
                continue
            place = f"steps[{i}].send.channels.{channel}.template"
            library = library or library_for(Store.of(conn).settings)
            try:
                library.named(content.template)
            except SurmesureError as exc:
                raise InvalidInput(
                    f"{place} (step {step.id!r}): unknown template {content.template!r}.",
                    field=place,
                    hint=exc.hint or "give a template of the library",
                ) from exc


def validate(store: Store, path: Path) -> JourneyDefinition:
    definition = load_file(path)
    with store.connect() as conn:
        check_references(conn, definition)
    return definition


# -- versions and status --------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    name: str
    version: int
    changed: bool


def publish(store: Store, definition: JourneyDefinition, now: datetime) -> Published:
    """Check the references and make ``definition`` the version new people enter (a new
    version only when it differs); an archived journey becomes active again."""
    j, v = schema.journeys, schema.journey_versions
    with store.begin() as conn:
        check_references(conn, definition)
        row = conn.execute(sa.select(j.c.version, j.c.status).where(j.c.name == definition.name))
        current = row.first()
        if current is not None:
            saved = version_of(conn, definition.name, int(current.version))
            if saved.document() == definition.document():
                return Published(definition.name, int(current.version), changed=False)
        version = add_version(
            conn,
            j,
            v,
            definition.name,
            definition.document(),
            now,
            None if current is None else int(current.version),
        )
        values: dict[str, Any] = {"status": "active"}
        if current is None:
            values["entries_read_at"] = now
        conn.execute(j.update().where(j.c.name == definition.name).values(**values))
    return Published(definition.name, version, changed=True)


def version_of(conn: Connection, name: str, version: int) -> JourneyDefinition:
    v = schema.journey_versions
    found = conn.execute(
        sa.select(v.c.definition).where(v.c.name == name, v.c.version == version)
    ).scalar_one()
    return parse(decode_json(found))


def head(conn: Connection, name: str) -> sa.Row[Any]:
    """The journey's row (version in force, status); :class:`NotFound` when unknown."""
    j = schema.journeys
    row = conn.execute(sa.select(j).where(j.c.name == name)).first()
    if row is None:
        raise NotFound(
            f"There is no journey {name!r}.",
            field="NAME",
            hint="`surmesure journey publish FILE` publishes one; check the name",
        )
    return row


def set_status(store: Store, name: str, status: str, now: datetime) -> str:
    """Pause, resume (``active``) or archive a journey; returns the status it had."""
    j = schema.journeys
    with store.begin() as conn:
        before = str(head(conn, name).status)
        conn.execute(j.update().where(j.c.name == name).values(status=status, updated_at=now))
    return before


def catalog(conn: Connection, statuses: tuple[str, ...] = STATUSES) -> dict[str, Any]:
    """``{name: (status, version in force)}`` of the journeys with one of ``statuses``."""
    j = schema.journeys
    rows = conn.execute(
        sa.select(j.c.name, j.c.status, j.c.version).where(j.c.status.in_(statuses))
    )
    return {str(r.name): (str(r.status), int(r.version)) for r in rows}


class Versions:
    """The definitions of the journey versions read so far (they never change)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int], JourneyDefinition] = {}

    def get(self, conn: Connection, name: str, version: int) -> JourneyDefinition:
        key = (name, version)
        if key not in self._known:
            self._known[key] = version_of(conn, name, version)
        return self._known[key]
