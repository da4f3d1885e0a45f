"""A consent choice recorded over HTTP reaches real-time segment membership through the
dispatcher: the person enters a segment that asks for that consent, and leaves it when she
withdraws it."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
from api_helpers import server_key, serving

from surmesure.segment import repository
from surmesure.segment.definitions import parse
from surmesure.store import Store, schema

MAILABLE = {"name": "mailable", "where": {"consent": {"purpose": "marketing", "channel": "email"}}}


def _members(store: Store) -> list[tuple[str, int]]:
    with store.connect() as conn:
        m = schema.segment_members.c
        return [
            (str(r[0]), int(r[1]))
            for r in conn.execute(
                schema.segment_members.select().with_only_columns(m.segment, m.person_id)
            )
        ]


def _wait_for(store: Store, wanted: list[tuple[str, int]]) -> list[tuple[str, int]]:
    deadline = time.monotonic() + 5
    while (found := _members(store)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_a_consent_moves_its_person_in_and_out_of_a_segment(store: Store) -> None:
    now = datetime(2026, 1, 1)
    with store.begin() as conn:
        conn.execute(
            schema.people.insert().values(
                person_id=1, merged_into=None, created_at=now, updated_at=now
            )
        )
    repository.save(store, parse(MAILABLE), now)
    auth = (server_key(store, "admin"), "")

    def choose(granted: bool) -> None:
        body = {
            "person": "1",
            "consents": [{"purpose": "marketing", "channel": "email", "granted": granted}],
            "evidence": "preference centre",
        }
        answer = httpx.post(f"{url}/v1/consents", json=body, auth=auth)
        assert answer.status_code == 201, answer.text

    with serving(store) as (url, _):
        choose(True)
        assert _wait_for(store, [("mailable", 1)]) == [("mailable", 1)]
        choose(False)
        assert _wait_for(store, []) == []
    with store.connect() as conn:
        ch = schema.segment_changes.c
        changes = conn.execute(
            schema.segment_changes.select().with_only_columns(ch.change).order_by(ch.changed_at)
        ).scalars()
        assert list(changes) == ["entered", "exited"]
