"""The call list over the API: a key with the ``calls`` scope takes the due call tasks, ranked,
with the script rendered per person; each task is handed over once; the outcomes come back
the same way, a bad row to the quarantine."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa
from api_helpers import server_key, serving
from campaign_world import HOUR, T0, add_people, document

from surmesure.deliver import documents, plan
from surmesure.protect.consent import refused_ids
from surmesure.store import Store, schema


def test_the_call_centre_takes_its_call_tasks_once(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 4, no_email={1, 2, 3, 4}, phones={1, 2, 3})
    doc = document(
        channels={
            "phone": {
                "text": "Bonjour {{ person.first_name }}, une offre pour vous.",
                "fields": {"first_name": {"trait": "first_name", "fallback": ""}},
            }
        },
        policy={"order": ["phone"]},
        value=40.0,
        costs={"phone": 0.5},
    )
    documents.save(store, documents.parse(doc), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    calls = server_key(store, "calls")
    decide = server_key(store, "decide")
    with serving(store, outbox_dir=tmp_path / "outbox") as (base, _):
        url = f"{base}/v1/campaigns/spring/calls"
        assert httpx.post(url, auth=(decide, ""), timeout=30).status_code == 403
        assert httpx.post(url, timeout=30).status_code == 401
        first = httpx.post(url, auth=(calls, ""), params={"limit": 2}, timeout=30)
        rest = httpx.post(url, auth=(calls, ""), timeout=30)
        again = httpx.post(url, auth=(calls, ""), timeout=30)
        other = httpx.post(f"{base}/v1/campaigns/nothing/calls", auth=(calls, ""), timeout=30)
        taken = first.json()["tasks"][0]
        outcomes = {
            "outcomes": [
                {
                    "message_id": taken["message_id"],
                    "person_id": taken["person_id"],
                    "outcome": "opt-out",
                    "called_at": "2026-03-02T11:00:00",
                },
                {"person_id": ids[4], "outcome": "maybe", "called_at": "2026-03-02T11:05:00"},
            ]
        }
        posted = httpx.post(f"{url}/outcomes", json=outcomes, auth=(calls, ""), timeout=30)
        forbidden = httpx.post(f"{url}/outcomes", json=outcomes, auth=(decide, ""), timeout=30)
        unknown = httpx.post(
            f"{base}/v1/campaigns/nothing/calls/outcomes", json=outcomes, auth=(calls, "")
        )
    assert first.status_code == rest.status_code == again.status_code == 200, first.text
    tasks = first.json()["tasks"] + rest.json()["tasks"]
    assert len(first.json()["tasks"]) == 2 and again.json()["tasks"] == []
    assert sorted(t["person_id"] for t in tasks) == sorted([ids[1], ids[2], ids[3]])
    for task in tasks:
        i = next(k for k, v in ids.items() if v == task["person_id"])
        assert task["script"] == f"Bonjour Name{i}, une offre pour vous."
        assert task["phone"] == f"+3361234{i:04d}"
    values = [t["expected_value"] for t in first.json()["tasks"]]
    assert values == sorted(values, reverse=True) and [
        t["rank"] for t in first.json()["tasks"]
    ] == [1, 2]
    assert other.status_code == 404 and unknown.status_code == 404
    assert forbidden.status_code == 403
    assert posted.status_code == 200, posted.text
    assert posted.json() == {
        "recorded": {"opt_out": 1},
        "quarantined": 1,
        "erased": 0,
        "already_recorded": 0,
    }
    act, q = schema.channel_activity, schema.quarantine
    with store.connect() as conn:
        events = conn.execute(sa.select(act.c.person_id, act.c.kind, act.c.campaign)).all()
        aside = conn.execute(sa.select(q.c.origin, q.c.kind, q.c.location, q.c.field)).all()
        refused = refused_ids(conn, "marketing", "phone", T0 + 24 * HOUR)
    assert [tuple(e) for e in events] == [(taken["person_id"], "opt_out", "spring")]
    assert [tuple(a) for a in aside] == [("api", "call_outcomes", "row 2", "outcome")]
    assert refused == {taken["person_id"]}
    m = schema.messages
    with store.connect() as conn:
        statuses = dict(
            conn.execute(sa.select(m.c.person_id, m.c.status).where(m.c.campaign == "spring")).all()
        )
    assert statuses == {ids[1]: "sent", ids[2]: "sent", ids[3]: "sent", ids[4]: "suppressed"}
    a = schema.audit_log
    with store.connect() as conn:
        logged = conn.execute(
            sa.select(sa.func.count()).where(a.c.action == "campaign_calls")
        ).scalar()
    assert logged == 3
