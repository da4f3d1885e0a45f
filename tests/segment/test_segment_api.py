"""``GET /v1/people/{ref}/segments`` on a real server, on DuckDB and on PostgreSQL: recorded
memberships with entered_at, live evaluation, references by id and by identifier, merged ids,
errors and keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from api_helpers import WRITE_KEY, server_key, serving
from fastapi import FastAPI
from segment_world import load_world

from surmesure.api.segments import router
from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment import membership, repository
from surmesure.store import Store, schema

ROUTE = "/v1/people/{ref}/segments"


def with_router(app: FastAPI) -> None:
    if not any(getattr(r, "path", None) == ROUTE for r in app.routes):
        app.include_router(router)


def world(store: Store, now: datetime) -> datetime:
    """Persons 1..3 (3 merged into 1); 1 in Lyon and a recent viewer; 2 in Paris. Returns the
    time of the refresh."""
    day = timedelta(days=1)
    load_world(
        store,
        {
            "people": [1, 2, {"id": 3, "merged_into": 1}],
            "traits": [
                {"p": 1, "name": "city", "value": "Lyon", "at": (now - 20 * day).isoformat()},
                {"p": 2, "name": "city", "value": "Paris", "at": (now - 20 * day).isoformat()},
            ],
            "events": [{"p": 1, "name": "Product Viewed", "at": (now - 3 * day).isoformat()}],
        },
    )
    with store.begin() as conn:
        conn.execute(
            schema.identifiers.insert().values(
                kind="email",
                value=blind.index(store, "email", "anna@example.com"),
                person_id=1,
                node_id=1,
                source="crm",
                first_seen_at=now - 30 * day,
            )
        )
    for doc in (
        {"name": "lyon", "where": {"trait": {"name": "city", "op": "eq", "value": "Lyon"}}},
        {"name": "viewers", "where": {"event": {"name": "Product Viewed", "within_days": 30}}},
        {"name": "paris", "where": {"trait": {"name": "city", "op": "eq", "value": "Paris"}}},
    ):
        repository.save(store, SegmentDefinition.model_validate(doc), now - 2 * day)
    refreshed_at = (now - day).replace(microsecond=0)
    membership.refresh(store, None, refreshed_at)
    # after the refresh: 2 moves to Lyon (more reliable, newer); a discovered segment for 2
    with store.begin() as conn:
        conn.execute(
            schema.traits.insert().values(
                record_key="late",
                name="city",
                person_id=2,
                node_id=2,
                value="Lyon",
                source="web",
                observed_at=now - timedelta(hours=1),
                reliability=0.99,
            )
        )
        conn.execute(
            schema.segment_members.insert().values(
                segment="cluster_0", person_id=2, entered_at=refreshed_at
            )
        )
    return refreshed_at


def names(payload: dict[str, Any]) -> list[str]:
    return [s["name"] for s in payload["segments"]]


def test_person_segments_recorded_live_and_errors(store: Store) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    refreshed_at = world(store, now)
    read = server_key(store, "read")
    basic = (read, "")
    bearer = {"Authorization": f"Bearer {read}"}
    with serving(store) as (url, app):
        with_router(app)
        by_id = httpx.get(f"{url}/v1/people/1/segments", auth=basic)
        by_email = httpx.get(f"{url}/v1/people/email:Anna@Example.com/segments", headers=bearer)
        merged = httpx.get(f"{url}/v1/people/3/segments", auth=basic)
        recorded_2 = httpx.get(f"{url}/v1/people/2/segments", auth=basic)
        live_2 = httpx.get(f"{url}/v1/people/2/segments", params={"live": "true"}, auth=basic)
        live_1 = httpx.get(f"{url}/v1/people/1/segments?live=true", headers=bearer)
        unknown = httpx.get(f"{url}/v1/people/999/segments", auth=basic)
        nobody = httpx.get(f"{url}/v1/people/email:zoe@example.com/segments", auth=basic)
        bad_ref = httpx.get(f"{url}/v1/people/someone/segments", auth=basic)
        anonymous = httpx.get(f"{url}/v1/people/1/segments")
        wrong_key = httpx.get(f"{url}/v1/people/1/segments", auth=("nope", ""))
        public_key = httpx.get(
            f"{url}/v1/people/email:Anna@Example.com/segments", auth=(WRITE_KEY, "")
        )

    assert by_id.status_code == 200, by_id.text
    payload = by_id.json()
    assert payload["person_id"] == 1 and payload["live"] is False
    assert names(payload) == ["lyon", "viewers"]
    assert {s["entered_at"] for s in payload["segments"]} == {refreshed_at.isoformat()}
    assert not any(s["discovered"] for s in payload["segments"])
    assert by_email.status_code == 200 and names(by_email.json()) == ["lyon", "viewers"]
    assert merged.status_code == 200 and merged.json()["person_id"] == 1

    # recorded: Paris as of the refresh, plus the stored cluster; live: Lyon now
    assert names(recorded_2.json()) == ["cluster_0", "paris"]
    live = {s["name"]: s for s in live_2.json()["segments"]}
    assert live_2.json()["live"] is True
    assert sorted(live) == ["cluster_0", "lyon"]
    assert live["lyon"]["entered_at"] is None and live["lyon"]["discovered"] is False
    assert live["cluster_0"]["discovered"] is True
    assert live["cluster_0"]["entered_at"] == refreshed_at.isoformat()
    assert names(live_1.json()) == ["lyon", "viewers"]

    for response in (unknown, nobody):
        assert response.status_code == 404
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == "not_found" and body["error"]["field"] == "REF"
        assert body["error"]["hint"]
    assert bad_ref.status_code == 400 and bad_ref.json()["error"]["field"] == "REF"
    assert anonymous.status_code == 401 and wrong_key.status_code == 401
    # the public write key cannot tell whether an address is a customer's
    assert public_key.status_code == 403 and "person_id" not in public_key.text
    assert anonymous.json()["error"]["field"] == "authorization"
