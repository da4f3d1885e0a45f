"""Segment messages from a JSON Lines file: the same path as the HTTP collector."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from conftest import invoke_json
from surmesure.collect.events import ingest_file
from surmesure.store import Store

LINES = [
    {"type": "page", "messageId": "m1", "anonymousId": "dev-a", "name": "Accueil",
     "timestamp": "2026-02-01T08:00:00+01:00"},
    {"type": "identify", "messageId": "m2", "anonymousId": "dev-a", "userId": "C1",
     "traits": {"email": "a@b.fr", "lastName": "Martin"}, "timestamp": "2026-02-01T08:01:00Z"},
    {"type": "track", "messageId": "m3", "userId": "C1", "event": "Order Completed"},
]  # fmt: skip


def write(path: Path, extra: list[bytes]) -> Path:
    path.write_bytes(b"\n".join([orjson.dumps(line) for line in LINES] + extra) + b"\n")
    return path


def test_a_file_is_stored_once_and_bad_lines_are_quarantined(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "events.jsonl", [b"{not json", b'{"type": "track", "messageId": "m4"}'])
    first = ingest_file(store, path, source="web", chunk=2)
    again = ingest_file(store, path, source="web", chunk=2)
    assert (first["received"], first["accepted"], first["quarantined"]) == (5, 3, 2)
    assert first["new_people"] == 1
    assert (again["accepted"], again["duplicate"]) == (0, 3)
    with store.connect() as conn:
        events = conn.execute(
            sa.text("SELECT message_id, occurred_at, person_id FROM events ORDER BY message_id")
        ).all()
        kept = conn.execute(
            sa.text("SELECT origin, location, field FROM quarantine ORDER BY location")
        ).all()
        traits = dict(conn.execute(sa.text("SELECT name, source FROM traits")).all())
    assert [e.message_id for e in events] == ["m1", "m2", "m3"]
    assert events[0].occurred_at.isoformat() == "2026-02-01T07:00:00"  # read in UTC
    assert len({e.person_id for e in events}) == 1
    assert [(k.origin, k.location) for k in kept] == [("import", "line 4"), ("import", "line 5")]
    assert kept[1].field == "userId"
    assert traits == {"last_name": "web"}


def test_import_events_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "events.jsonl", [])
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    report = invoke_json(monkeypatch, url, "import", "events", str(path))
    assert (report["kind"], report["source"], report["accepted"]) == ("events", "web", 3)
