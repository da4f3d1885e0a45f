"""People, their events and journeys for the journey tests (on top of the campaign world)."""

from __future__ import annotations

import copy
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

# the deliver tests' helpers (SMTP sink, campaign world) import each other by module name
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deliver"))

from campaign_world import T0, add_people, email_of

from surmesure.collect.events import write_events
from surmesure.collect.segment import validate_messages
from surmesure.dispatch.dispatcher import drain
from surmesure.journeys import published
from surmesure.journeys.document import parse
from surmesure.store import Store, schema

__all__ = [
    "T0",
    "WELCOME",
    "add_people",
    "email_of",
    "messages_of",
    "people_rows",
    "publish",
    "track",
    "welcome_document",
]

WELCOME: dict[str, Any] = {
    "name": "welcome",
    "entry": {"event": {"name": "Signed Up"}},
    "goal": {"event": "Order Completed"},
    "exit_on": [{"event": "Unsubscribed"}],
    "steps": [
        {"id": "hello", "send": {"channels": {"email": {"text": "Hello"}}}, "next": "pause"},
        {"id": "pause", "wait": {"days": 2}, "next": "reminder"},
        {
            "id": "reminder",
            "send": {"channels": {"email": {"text": "Still there?"}}},
            "out_of_stock": "similar",
            "next": "watch",
        },
        {
            "id": "watch",
            "wait_for_event": {"event": "Product Viewed", "timeout_hours": 72},
            "next": "lyon",
            "timeout": "done",
        },
        {
            "id": "lyon",
            "branch": {
                "if": {"trait": {"name": "city", "op": "eq", "value": "Lyon"}},
                "then": "offer",
                "else": "done",
            },
        },
        {"id": "offer", "send": {"channels": {"email": {"text": "Offer"}}}, "next": "done"},
        {"id": "similar", "send": {"channels": {"email": {"text": "Similar"}}}, "next": "done"},
        {"id": "done", "exit": {"reason": "finished"}},
    ],
}


def welcome_document() -> dict[str, Any]:
    """A fresh copy of :data:`WELCOME`, to change in a test."""
    return copy.deepcopy(WELCOME)


def track(store: Store, customer: str, event: str, at: datetime, **properties: Any) -> None:
    """One tracked event of customer ``C<i>`` at ``at``, collected, then dispatched at ``at``."""
    raw = [
        {
            "type": "track",
            "event": event,
            "userId": customer,
            "messageId": f"{customer}-{event}-{at.isoformat()}",
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "properties": properties,
        }
    ]
    accepted, refused = validate_messages(raw, region="FR", prefix="")
    assert not refused, refused
    with store.begin() as conn:
        write_events(store, conn, accepted, source="web", received_at=at)
    drain(store, now=at)


def publish(store: Store, document: dict[str, Any], at: datetime = T0) -> int:
    return published.publish(store, parse(document), at).version


def people_rows(store: Store, journey: str) -> dict[int, dict[str, Any]]:
    """``person_id -> row`` of the journey's latest entry of each person."""
    p = schema.journey_people
    with store.connect() as conn:
        rows = conn.execute(sa.select(p).where(p.c.journey == journey).order_by(p.c.entry))
        return {int(r.person_id): dict(r._mapping) for r in rows}


def messages_of(store: Store, campaign: str) -> dict[int, tuple[str, int, int]]:
    """``person_id -> (status, version, step)`` of a send step's outbox rows (a person's
    latest step where they have several: the rows are read in that order)."""
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.person_id, m.c.status, m.c.version, m.c.step)
            .where(m.c.campaign == campaign)
            .order_by(m.c.person_id, m.c.step)
        )
        return {int(r[0]): (str(r[1]), int(r[2]), int(r[3])) for r in rows}
