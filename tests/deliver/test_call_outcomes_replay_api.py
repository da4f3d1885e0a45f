"""Call outcomes posted over the API and refused go to the quarantine, and replay as a file's
do: ``surmesure quarantine replay --kind call_outcomes [--mapping fix.yaml]`` records them
of the campaign they were posted for; the centre's key records outcomes only of the call tasks
it was handed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import server_key, serving
from campaign_world import T0, document
from cascade_world import sent
from people_rows import activity_rows, add_people

from conftest import invoke_json
from surmesure.deliver import documents
from surmesure.protect.consent import refused_ids
from surmesure.store import Store, schema


def test_outcomes_refused_on_the_api_replay_after_a_fix(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_people(store, (1, None), (2, None), (3, None))
    documents.save(store, documents.parse(document()), T0)
    for person in (1, 2):  # the call tasks handed to the centre; none for person 3
        sent(store, person, T0, campaign="spring", channel="phone")
    other = sent(store, 1, T0, campaign="autumn", channel="phone")
    outcomes = {
        "outcomes": [
            {"person_id": 1, "outcome": "interested", "called_at": "2026-03-02T11:00:00"},
            {"person_id": 1, "outcome": "call back", "called_at": "2026-03-02T11:05:00"},
            {"person_id": 2, "outcome": "opt-out", "called_at": "later"},
            {"person_id": 99, "outcome": "answered", "called_at": "2026-03-02T11:10:00"},
            # the centre's key cannot opt out someone it was not asked to call, nor post the
            # outcome of another campaign's task here
            {"person_id": 3, "outcome": "opt-out", "called_at": "2026-03-02T11:20:00"},
            {"person_id": 1, "outcome": "refused", "called_at": "2026-03-02T11:30:00",
             "message_id": other},
        ]
    }  # fmt: skip
    calls = server_key(store, "calls")
    with serving(store, outbox_dir=tmp_path / "outbox") as (base, _):
        url = f"{base}/v1/campaigns/spring/calls/outcomes"
        posted = httpx.post(url, json=outcomes, auth=(calls, ""), timeout=30)
    assert posted.status_code == 200, posted.text
    assert posted.json()["recorded"] == {"interested": 1}
    assert posted.json()["quarantined"] == 5
    # replayed as they are, they are still refused, for the same reasons
    same = invoke_json(monkeypatch, store.url, "quarantine", "replay", "--kind", "call_outcomes")
    assert (same["considered"], same["replayed"], same["still_open"]) == (5, 0, 5)
    fix = tmp_path / "fix.yaml"
    fix.write_text(
        "kind: call_outcomes\nvalues:\n  outcome: {call back: answered}\n"
        "  called_at: {later: '2026-03-02T12:00:00'}\n"
    )
    out = invoke_json(
        monkeypatch, store.url, "quarantine", "replay", "--kind", "call_outcomes",
        "--mapping", str(fix),
    )  # fmt: skip
    assert (out["considered"], out["replayed"], out["still_open"]) == (5, 2, 3)
    assert sorted(out["still_open_by_reason"]) == [
        "message_id: a call task of another campaign; post it to that campaign",
        "person_id: no call task of this campaign was handed over for this person; "
        "give the person_id of a row of its call list",
        "person_id: no such person; give the person_id of the call list's row",
    ]
    # recorded of the campaign they were posted for, as the post would have
    assert activity_rows(store, "person_id", "kind", "campaign", "occurred_at") == [
        (1, "interested", "spring", datetime(2026, 3, 2, 11)),
        (1, "answered", "spring", datetime(2026, 3, 2, 11, 5)),
        (2, "opt_out", "spring", datetime(2026, 3, 2, 12)),
    ]
    with store.connect() as conn:
        assert refused_ids(conn, "marketing", "phone", datetime(2100, 1, 1)) == {2}  # not 3
    q = schema.quarantine
    with store.connect() as conn:
        statuses = conn.execute(
            sa.select(q.c.origin, q.c.source_name, q.c.location, q.c.status).order_by(q.c.location)
        ).all()
    assert [tuple(r) for r in statuses] == [
        ("api", "api:spring", "row 2", "replayed"),
        ("api", "api:spring", "row 3", "replayed"),
        ("api", "api:spring", "row 4", "open"),
        ("api", "api:spring", "row 5", "open"),
        ("api", "api:spring", "row 6", "open"),
    ]
    # nothing is recorded twice: the fixed rows are no longer open
    again = invoke_json(monkeypatch, store.url, "quarantine", "replay", "--mapping", str(fix))
    assert (again["considered"], again["replayed"]) == (3, 0)
    assert len(activity_rows(store, "person_id")) == 3
