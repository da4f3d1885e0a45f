"""Consent over HTTP: choices recorded with their evidence, read back as in force and history
by the one rule; bad input is a 400 naming the field; an unknown person a 404; no key a 401."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from api_helpers import WRITE_KEY, server_key, serving

from surmesure.protect import audit, blind
from surmesure.store import Store, schema


def _people(store: Store) -> None:
    now = datetime(2026, 1, 1)
    with store.begin() as conn:
        conn.execute(
            schema.people.insert(),
            [
                {"person_id": 1, "merged_into": None, "created_at": now, "updated_at": now},
                {"person_id": 2, "merged_into": 1, "created_at": now, "updated_at": now},
            ],
        )
        conn.execute(
            schema.identifiers.insert().values(
                kind="email", value=blind.index(store, "email", "anna@example.com"), person_id=1,
                node_id=1, source="crm", first_seen_at=now,
            )
        )  # fmt: skip


def test_consents_are_recorded_and_read_back(store: Store) -> None:
    _people(store)
    earlier = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    AUTH = (server_key(store, "admin"), "")
    with serving(store) as (url, _app):
        public = httpx.get(f"{url}/v1/people/1/consents", auth=(WRITE_KEY, ""))
        assert public.status_code == 403  # the public write key reads nobody's consents
        first = httpx.post(
            f"{url}/v1/consents",
            json={
                "person": "email:anna@example.com",
                "consents": [{"purpose": "marketing", "channel": "email", "granted": True}],
                "evidence": "newsletter form 7",
                "recorded_at": earlier,
            },
            auth=AUTH,
        )
        assert first.status_code == 201, first.text
        assert first.json()["person_id"] == 1
        second = httpx.post(
            f"{url}/v1/consents",
            json={
                "person": "2",  # merged into 1
                "consents": [
                    {"purpose": "marketing", "granted": False},
                    {"purpose": "profiling", "channel": "any", "granted": False},
                ],
                "evidence": "call 2026-118, unsubscribe from everything",
                "source": "call_centre",
            },
            auth=AUTH,
        )
        assert second.status_code == 201, second.text
        read = httpx.get(f"{url}/v1/people/1/consents", auth=AUTH)
        assert read.status_code == 200
        body = read.json()
        bad = httpx.post(
            f"{url}/v1/consents",
            json={"person": "1", "consents": [{"purpose": "ads", "granted": False}],
                  "evidence": "x"},
            auth=AUTH,
        )  # fmt: skip
        future = httpx.post(
            f"{url}/v1/consents",
            json={"person": "1", "consents": [{"purpose": "marketing", "granted": False}],
                  "evidence": "x", "recorded_at": "2999-01-01T00:00:00Z"},
            auth=AUTH,
        )  # fmt: skip
        ancient = httpx.post(
            f"{url}/v1/consents",
            json={"person": "1", "consents": [{"purpose": "marketing", "granted": False}],
                  "evidence": "x", "recorded_at": "0001-01-01T00:00:00+14:00"},
            auth=AUTH,
        )  # fmt: skip
        nobody = httpx.get(f"{url}/v1/people/999/consents", auth=AUTH)
        no_key = httpx.get(f"{url}/v1/people/1/consents")
        no_key_post = httpx.post(f"{url}/v1/consents", json={})
    assert body["person_id"] == 1
    assert [(h["purpose"], h["channel"], h["granted"], h["source"]) for h in body["history"]] == [
        ("marketing", "email", True, "api"),
        ("marketing", "any", False, "call_centre"),
        ("profiling", "any", False, "call_centre"),
    ]
    in_force = {(c["purpose"], c["channel"]): c for c in body["in_force"]}
    # the later "any" refusal is in force on e-mail too, and says which record decided
    assert in_force[("marketing", "email")]["granted"] is False
    assert in_force[("marketing", "email")]["record"]["evidence"].startswith("call 2026-118")
    assert in_force[("profiling", "any")]["granted"] is False
    assert bad.status_code == 400 and "purpose" in bad.json()["error"]["field"]
    assert future.status_code == 400 and future.json()["error"]["field"] == "recorded_at"
    assert ancient.status_code == 400 and ancient.json()["error"]["field"] == "recorded_at"
    assert nobody.status_code == 404
    assert no_key.status_code == 401 and no_key_post.status_code in (400, 401)
    acts = sorted(e["action"] for e in audit.entries(store, person_id=1))
    assert acts == ["consent.record", "consent.record", "consents"]


def test_preferences_are_recorded_over_the_api_and_hold_marketing_back(store: Store) -> None:
    _people(store)
    admin = (server_key(store, "admin"), "")
    reader = (server_key(store, "read"), "")
    until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    body = {
        "person": "2",  # merged into 1
        "preferences": [
            {"kind": "topic", "name": "offers", "value": "out"},
            {"kind": "frequency", "value": "monthly"},
            {"kind": "pause", "value": "on", "until": until},
        ],
        "evidence": "call 2026-311",
        "source": "call_centre",
    }
    with serving(store) as (url, _app):
        refused = httpx.post(f"{url}/v1/preferences", json=body, auth=reader)
        saved = httpx.post(f"{url}/v1/preferences", json=body, auth=admin)
        read = httpx.get(f"{url}/v1/people/1/consents", auth=reader)
        unknown_topic = httpx.post(
            f"{url}/v1/preferences",
            json={**body, "preferences": [{"kind": "topic", "name": "ads", "value": "out"}]},
            auth=admin,
        )
        too_long = httpx.post(
            f"{url}/v1/preferences",
            json={**body, "preferences": [{"kind": "pause", "value": "on",
                                           "until": "2999-01-01T00:00:00Z"}]},
            auth=admin,
        )  # fmt: skip
        endless = httpx.post(
            f"{url}/v1/preferences",
            json={**body, "preferences": [{"kind": "pause", "value": "on"}]},
            auth=admin,
        )
        nobody = httpx.post(f"{url}/v1/preferences", json={**body, "person": "99"}, auth=admin)
    assert refused.status_code == 403
    assert saved.status_code == 201, saved.text
    assert saved.json()["person_id"] == 1
    in_force = read.json()["preferences"]["in_force"]
    assert in_force["topics"]["offers"] is False
    assert in_force["frequency"] == "monthly"
    assert in_force["paused_until"][:10] == until[:10]
    assert [h["source"] for h in read.json()["preferences"]["history"]] == ["call_centre"] * 3
    assert unknown_topic.status_code == 400
    assert unknown_topic.json()["error"]["field"] == "preferences[0].name"
    assert too_long.status_code == 400
    assert too_long.json()["error"]["field"] == "preferences[0].until"
    assert endless.status_code == 400 and endless.json()["error"]["field"] == "preferences[0].pause"
    assert nobody.status_code == 404
    actions = [e["action"] for e in audit.entries(store, person_id=1)]
    assert actions.count("preferences.record") == 1
