"""Segment's consent fields become consent records: each category of
``context.consent.categoryPreferences`` maps to purposes and channels (configurable), recorded
for the message's person at its time, with the message id as evidence, once per message."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, serving
from pydantic import ValidationError

from surmesure.collect.events import ingest_file
from surmesure.config import Settings, get_settings
from surmesure.protect import blind
from surmesure.protect.consent import refused
from surmesure.segment.snapshot import load_snapshot
from surmesure.store import Store, schema

PREFS = {"Advertising": False, "Analytics": True, "functional": "yes", "Unknown": False}
LINES = [
    {"type": "identify", "messageId": "m1", "userId": "C1", "traits": {"email": "a@b.fr"},
     "timestamp": "2026-02-01T08:00:00Z",
     "context": {"consent": {"categoryPreferences": PREFS}}},
    {"type": "page", "messageId": "m2", "userId": "C1", "timestamp": "2026-02-02T08:00:00Z",
     "context": {"consent": {"categoryPreferences": {"email": False, "sms": True}}}},
    {"type": "page", "messageId": "m3", "userId": "C2", "timestamp": "2026-02-02T09:00:00Z",
     "context": {"consent": {"categoryPreferences": {"advertising": True, "targeting": False}}}},
    {"type": "page", "messageId": "m4", "userId": "C2", "context": {"consent": "all"}},
]  # fmt: skip


def _records(store: Store) -> list[tuple[str, str, str, bool, datetime, str, str]]:
    k, ids = schema.consents, schema.identifiers
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(
                ids.c.value, k.c.purpose, k.c.channel, k.c.granted, k.c.recorded_at, k.c.source,
                k.c.evidence,
            )
            .join(ids, sa.and_(ids.c.person_id == k.c.person_id, ids.c.kind == "customer_id"))
        ).all()  # fmt: skip
    names = {
        blind.index(store, "customer_id", c): c for c in ("C1", "C2", "C9")
    }  # the ids held as stored
    found = [(names[r[0]], *r[1:]) for r in rows]
    return sorted(found, key=lambda r: (r[0], r[4], r[1], r[2]))  # type: ignore[return-value]


def test_category_preferences_become_consent_records(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in LINES) + b"\n")
    first = ingest_file(store, path, source="web")
    again = ingest_file(store, path, source="web")  # sent again: nothing recorded twice
    assert first["consents"] == 5 and again["consents"] == 0
    day1, day2 = datetime(2026, 2, 1, 8), datetime(2026, 2, 2, 8)
    assert [r[:6] for r in _records(store)] == [
        ("C1", "analytics", "any", True, day1, "web"),
        ("C1", "marketing", "web", False, day1, "web"),  # not a boolean, not mapped: ignored
        ("C1", "marketing", "email", False, day2, "web"),
        ("C1", "marketing", "sms", True, day2, "web"),
        ("C2", "marketing", "web", False, datetime(2026, 2, 2, 9), "web"),  # a refusal wins
    ]
    evidence = {r[6] for r in _records(store)}
    assert "segment messageId m1: Advertising=false" in evidence
    assert "segment messageId m3: advertising=true, targeting=false" in evidence
    with store.connect() as conn:
        person = conn.execute(
            sa.select(schema.identifiers.c.person_id).where(
                schema.identifiers.c.value == blind.index(store, "customer_id", "C1")
            )
        ).scalar_one()
        snapshot = load_snapshot(conn, int(person), day2, 730.0)
    assert refused(snapshot.consents, "marketing", "email", day2)
    assert not refused(snapshot.consents, "marketing", "sms", day2)


def test_the_mapping_is_a_setting_and_the_http_collector_records(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = {
        "messageId": "h1",
        "userId": "C9",
        "event": "Viewed",
        "timestamp": "2026-02-03T10:00:00Z",
        "context": {"consent": {"categoryPreferences": {"C0004": False}}},
    }
    mapping = {"C0004": ["marketing:any", "profiling:any"]}
    monkeypatch.setenv("SURMESURE_CONSENT_CATEGORIES", orjson.dumps(mapping).decode())
    get_settings.cache_clear()
    with serving(store) as (url, _app):
        response = httpx.post(f"{url}/v1/track", json=message, auth=(WRITE_KEY, ""))
        assert response.status_code == 200
    rows = _records(store)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("C9", "marketing", "any", False),
        ("C9", "profiling", "any", False),
    ]
    assert rows[0][6] == "segment messageId h1: C0004=false"
    get_settings.cache_clear()


def test_a_mapping_to_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(ValidationError, match="consent_categories"):
        Settings(consent_categories={"ads": ["advertising:web"]})
