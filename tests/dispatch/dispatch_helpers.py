"""Storing track events straight through collect, and a segment they move people into."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from surmesure.clock import utcnow
from surmesure.collect.events import Ingested, write_events
from surmesure.collect.segment import validate_messages
from surmesure.segment import repository
from surmesure.segment.definitions import parse
from surmesure.store import Store

VIEWERS = {"name": "viewers", "where": {"event": {"type": "track", "name": "Product Viewed"}}}


def save_viewers(store: Store) -> None:
    repository.save(store, parse(VIEWERS), datetime(2026, 1, 1))


def track(person: str, message_id: str) -> dict[str, object]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": person,
        "messageId": message_id,
        "timestamp": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def store_events(store: Store, people: int, *, prefix: str = "m") -> Ingested:
    """One track event for each of ``people`` anonymous visitors, in one transaction."""
    raw = [track(f"anon-{prefix}-{i}", f"{prefix}-{i}") for i in range(people)]
    accepted, refused = validate_messages(raw, region="FR", prefix="")
    assert not refused
    with store.begin() as conn:
        return write_events(store, conn, accepted, source="web", received_at=utcnow())


def value(store: Store, query: str) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.text(query)).scalar_one())
