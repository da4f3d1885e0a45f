"""Segment-compatible collection over HTTP, on a real server and on both stores.

The official ``segment-analytics-python`` client sends unchanged; every answer is checked
against what the store holds afterwards.
"""

from __future__ import annotations

import gc
import gzip
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from api_helpers import WRITE_KEY, serving
from import_helpers import quarantined
from segment.analytics import Client

from conftest import opened_rows
from held import held
from surmesure.api.app import YOUNG_COLLECTION
from surmesure.protect import blind
from surmesure.store import Store, schema
from surmesure.unify.trust import sign

AUTH = (WRITE_KEY, "")


def rows(store: Store, query: str, **params: Any) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(sa.text(query), params))


def track(message_id: str, anonymous_id: str = "anon-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "event": "Product Viewed",
        "properties": {"product_id": "P1"},
        "timestamp": "2026-03-01T10:00:00.000Z",
        **extra,
    }


def test_the_official_segment_client_sends_every_call(store: Store) -> None:
    # the shop's server signs the logged-in customer's id (identity verification), so the
    # write key's low-trust "web" source may link the device and the alias to the customer
    verified = {"userHash": sign("shop-secret", "C001")}
    with serving(store, identity_secret="shop-secret") as (url, _):
        errors: list[Any] = []
        client = Client(WRITE_KEY, host=url, on_error=lambda e, batch: errors.append(e))
        at = [datetime(2026, 3, 1, 10, minute, tzinfo=UTC) for minute in range(7)]
        client.page(
            anonymous_id="device-1", name="Accueil", properties={"path": "/"}, timestamp=at[0]
        )
        client.track(
            anonymous_id="device-1",
            event="Product Viewed",
            properties={"sku": "A1"},
            timestamp=at[1],
        )
        client.identify(
            timestamp=at[2],
            user_id="C001",
            anonymous_id="device-1",
            context=verified,
            traits={
                "email": "Marie.Dupont@Example.com",
                "firstName": "Marie",
                "address": {"city": "Lyon", "postalCode": "69001"},
                "plan": "gold",
            },
        )
        client.track(
            user_id="C001", event="Order Completed", properties={"revenue": 42.5}, timestamp=at[3]
        )
        client.screen(user_id="C001", name="Panier", timestamp=at[4])
        client.group(user_id="C001", group_id="household-9", traits={"size": 3}, timestamp=at[5])
        client.alias(previous_id="device-2", user_id="C001", timestamp=at[6], context=verified)
        client.flush()
        client.shutdown()
    assert errors == []
    events = rows(store, "SELECT type, event, person_id, source FROM events ORDER BY occurred_at")
    assert [e.type for e in events] == [
        "page", "track", "identify", "track", "screen", "group", "alias",
    ]  # fmt: skip
    assert [e.event for e in events][:2] == ["Accueil", "Product Viewed"]
    assert events[5].event == "household-9"
    # the device's anonymous person became the customer when they identified themselves
    assert len({e.person_id for e in events}) == 1
    assert {e.source for e in events} == {"web"}
    person = events[0].person_id
    ids = {(kind, value) for kind, value, _, _ in held(store)}
    assert ids == {
        ("customer_id", "C001"),
        ("anonymous_id", "device-1"),
        ("anonymous_id", "device-2"),
        ("email", "marie.dupont@example.com"),
    }
    # the alias keeps the device it replaces as its blind index, never in clear
    (alias,) = rows(store, "SELECT CAST(properties AS TEXT) AS p FROM events WHERE type = 'alias'")
    assert orjson.loads(alias.p) == {"previous_id": blind.index(store, "anonymous_id", "device-2")}
    everything = rows(store, "SELECT CAST(properties AS TEXT) AS p FROM events")
    assert not any("device-2" in str(e.p) for e in everything)
    traits = {
        r["name"]: (r["value"], r["source"], r["reliability"])
        for r in opened_rows(store, "traits", "person_id = :p", p=person)
    }
    assert traits == {
        "first_name": ("Marie", "web", 0.6),
        "city": ("Lyon", "web", 0.6),
        "postcode": ("69001", "web", 0.6),
        "plan": ("gold", "web", 0.6),
    }


def test_the_official_client_reports_no_failure_for_a_batch_stored_but_for_one_message(
    store: Store,
) -> None:
    # a batch of 8 where one identify carries a bad e-mail: the client must report nothing as
    # failed (7 are stored), and the bad one waits in the quarantine with its reason. The
    # client sends a batch as soon as it holds 8 messages (upload_size); upload_interval
    # bounds how long its shutdown waits for more
    with serving(store) as (url, _):
        errors: list[Any] = []
        client = Client(
            WRITE_KEY,
            host=url,
            upload_size=8,
            upload_interval=2,
            on_error=lambda e, b: errors.append((e, b)),
        )
        (consumer,) = client.consumers
        sizes: list[int] = []
        send = consumer.request
        consumer.request = lambda batch: (sizes.append(len(batch)), send(batch))[1]
        at = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
        for n in range(7):
            client.track(anonymous_id=f"d-{n}", event="Product Viewed", timestamp=at)
        client.identify(user_id="C77", traits={"email": "not-an-address"}, timestamp=at)
        client.flush()
        client.shutdown()
    assert sizes == [8]  # one request carried the batch
    assert errors == []
    assert rows(store, "SELECT count(*) FROM events") == [(7,)]
    kept = rows(store, "SELECT field, reason FROM quarantine")
    assert len(kept) == 1 and kept[0].field.endswith("].traits.email")
    assert "e-mail" in kept[0].reason


def test_a_message_sent_twice_is_stored_once(store: Store) -> None:
    with serving(store) as (url, _):
        first = httpx.post(f"{url}/v1/track", json=track("m-1"), auth=AUTH)
        again = httpx.post(
            f"{url}/v1/batch", json={"batch": [track("m-1"), track("m-2")]}, auth=AUTH
        )
    assert first.status_code == 200 and first.json() == {
        "success": True, "accepted": 1, "duplicate": 0,
    }  # fmt: skip
    assert again.status_code == 200 and again.json()["duplicate"] == 1
    assert again.json()["accepted"] == 1
    assert rows(store, "SELECT message_id FROM events ORDER BY message_id") == [("m-1",), ("m-2",)]


def test_a_bad_message_is_quarantined_and_named_while_the_batch_is_stored(store: Store) -> None:
    # the call stored messages, so it answers 200: an SDK must not report them as lost
    batch = [
        track("ok-1"),
        track("bad-1", anonymous_id=None),
        track("bad-2", timestamp="yesterday"),
        {"type": "identify", "messageId": "bad-3", "userId": "C9", "traits": {"email": "nope"}},
        track("ok-2"),
    ]
    with serving(store) as (url, _):
        response = httpx.post(f"{url}/v1/batch", json={"batch": batch}, auth=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2 and body["success"] is False
    assert body["error"]["field"] == "batch[1].userId"
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "batch[1].userId"),
        (2, "batch[2].timestamp"),
        (3, "batch[3].traits.email"),
    ]
    assert "anonymousId" in body["rejected"][0]["reason"]
    assert "traceback" not in response.text.lower()
    stored = rows(store, "SELECT message_id FROM events ORDER BY message_id")
    assert stored == [("ok-1",), ("ok-2",)]
    kept = sorted(quarantined(store), key=lambda k: str(k["location"]))
    assert [(k["origin"], k["kind"], k["source_name"]) for k in kept] == [
        ("api", "events", "web")
    ] * 3
    assert [k["location"] for k in kept] == [
        "messageId bad-1",
        "messageId bad-2",
        "messageId bad-3",
    ]
    assert kept[1]["value"] == "yesterday" and kept[2]["value"] == "nope"
    assert "e-mail" in kept[2]["reason"]


def test_single_calls_name_the_missing_field(store: Store) -> None:
    with serving(store) as (url, _):
        no_event = httpx.post(f"{url}/v1/track", json=track("t-1", event=None), auth=AUTH)
        no_previous = httpx.post(
            f"{url}/v1/alias", json={"messageId": "a-1", "userId": "C1"}, auth=AUTH
        )
        ok = httpx.post(f"{url}/v1/page", json={"messageId": "p-1", "userId": "C1"}, auth=AUTH)
    assert no_event.status_code == 400
    assert no_event.json()["error"]["field"] == "event"
    assert no_previous.status_code == 400
    assert no_previous.json()["error"]["field"] == "previousId"
    assert ok.status_code == 200
    assert rows(store, "SELECT type FROM events") == [("page",)]


def test_auth_size_and_body_errors(store: Store) -> None:
    with serving(store, max_request_bytes=4096) as (url, _):
        no_key = httpx.post(f"{url}/v1/track", json=track("x-1"))
        bad_key = httpx.post(f"{url}/v1/track", json=track("x-2"), auth=("nope", ""))
        body_key = httpx.post(f"{url}/v1/track", json={**track("x-3"), "writeKey": WRITE_KEY})
        big = {"batch": [track(f"big-{i}") for i in range(100)]}
        too_large = httpx.post(f"{url}/v1/batch", json=big, auth=AUTH)
        bomb = gzip.compress(b'{"batch": [' + b" " * 100_000 + b"]}")
        too_large_gzip = httpx.post(
            f"{url}/v1/batch",
            content=bomb,
            auth=AUTH,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        small = gzip.compress(orjson.dumps({"batch": [track("gz-1")]}))
        gzipped = httpx.post(
            f"{url}/v1/batch", content=small, auth=AUTH, headers={"Content-Encoding": "gzip"}
        )
        not_json = httpx.post(f"{url}/v1/batch", content=b"{batch: [", auth=AUTH)
        no_batch = httpx.post(f"{url}/v1/batch", json={"events": []}, auth=AUTH)
    assert no_key.status_code == 401 and no_key.json()["error"]["field"] == "writeKey"
    assert bad_key.status_code == 401 and "not known" in bad_key.json()["error"]["message"]
    assert body_key.status_code == 200
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "payload_too_large"
    assert too_large_gzip.status_code == 413
    assert gzipped.status_code == 200
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
    assert no_batch.status_code == 400 and no_batch.json()["error"]["field"] == "batch"
    assert sorted(r[0] for r in rows(store, "SELECT message_id FROM events")) == ["gz-1", "x-3"]


def test_batch_context_is_merged_under_each_message(store: Store) -> None:
    body = {
        "batch": [track("c-1", context={"locale": "en-GB"}), track("c-2")],
        "context": {"locale": "fr-FR", "library": {"name": "analytics.js"}},
    }
    with serving(store) as (url, _):
        assert httpx.post(f"{url}/v1/batch", json=body, auth=AUTH).status_code == 200
    contexts = {r["message_id"]: r["context"] for r in opened_rows(store, "events")}
    assert contexts["c-1"] == {"locale": "en-GB", "library": {"name": "analytics.js"}}
    assert contexts["c-2"] == {"locale": "fr-FR", "library": {"name": "analytics.js"}}


def _concurrently(
    url: str, clients: int, calls: int, call: Callable[[int, int], tuple[str, Any]]
) -> list[httpx.Response]:
    """``clients`` threads starting together, each posting ``calls`` calls in turn:
    ``call(worker, n)`` gives the path and the JSON body."""
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def send(worker: int) -> None:
        with httpx.Client(auth=AUTH) as http:
            start.wait()
            for n in range(calls):
                path, body = call(worker, n)
                response = http.post(f"{url}{path}", json=body)
                with lock:
                    answers.append(response)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_concurrent_calls_share_commits_and_every_answer_means_stored(store: Store) -> None:
    clients, calls, per_call = 6, 5, 100

    def batch(worker: int, call: int) -> tuple[str, Any]:
        messages = [
            track(f"w{worker}-c{call}-{i}", anonymous_id=f"dev-{worker}-{i % 7}")
            for i in range(per_call)
        ]
        return "/v1/batch", {"batch": messages}

    with serving(store, commit_interval_ms=20) as (url, app):
        answers = _concurrently(url, clients, calls, batch)
        commits = app.state.writer.commits
    assert [a.status_code for a in answers] == [200] * clients * calls
    assert sum(a.json()["accepted"] for a in answers) == clients * calls * per_call
    with store.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(schema.events)).scalar()
        people = conn.execute(
            sa.select(sa.func.count(sa.distinct(schema.events.c.person_id)))
        ).scalar()
    assert count == clients * calls * per_call
    assert people == clients * 7
    assert commits < clients * calls  # several calls were committed together


def test_single_event_calls_share_paced_commits(store: Store) -> None:
    """One event a call from many clients: a commit starts no sooner than
    ``commit_every_ms`` after the previous one, so the calls of that time share it."""
    clients, calls = 8, 10

    def single(worker: int, call: int) -> tuple[str, Any]:
        return "/v1/track", track(f"one-{worker}-{call}", anonymous_id=f"visitor-{worker}-{call}")

    with serving(store, commit_interval_ms=0, commit_every_ms=200) as (url, app):
        answers = _concurrently(url, clients, calls, single)
        commits = app.state.writer.commits
    assert [a.status_code for a in answers] == [200] * clients * calls
    assert len(rows(store, "SELECT message_id FROM events WHERE message_id LIKE 'one-%'")) == 80
    # about one commit per round of the clients; without the pause, two or more
    assert commits <= calls + calls // 2


def test_a_served_app_leaves_its_start_up_heap_out_of_garbage_collection(store: Store) -> None:
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        with serving(store, freeze=True) as (url, _):
            frozen, young = gc.get_freeze_count(), gc.get_threshold()[0]
            batch = [track(f"gc-{i}", anonymous_id=f"dev-{i % 3}") for i in range(50)]
            answer = httpx.post(f"{url}/v1/batch", json={"batch": batch}, auth=AUTH)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert frozen > 10_000  # modules, models and the app at least
    assert young == YOUNG_COLLECTION
    assert answer.status_code == 200 and answer.json()["accepted"] == 50
    assert len(rows(store, "SELECT message_id FROM events WHERE message_id LIKE 'gc-%'")) == 50


def test_health_and_openapi(store: Store) -> None:
    with serving(store) as (url, _):
        health = httpx.get(f"{url}/health").json()
        spec = httpx.get(f"{url}/openapi.json").json()
    assert health.pop("decisions") in {"warming", "ready"}  # see test_serving_packed
    assert health == {"status": "ok", "database": store.dialect}
    for path in ("batch", "identify", "track", "page", "screen", "alias", "group"):
        assert f"/v1/{path}" in spec["paths"]
    body = spec["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert "batch" in body["schema"]["properties"]


def test_an_event_over_http_moves_its_person_into_a_segment_at_once(store: Store) -> None:
    from surmesure.segment import repository
    from surmesure.segment.definitions import parse

    viewers = parse(
        {
            "name": "viewers",
            "where": {"event": {"type": "track", "name": "Product Viewed", "min_count": 2}},
        }
    )
    repository.save(store, viewers, datetime(2026, 1, 1))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with serving(store) as (url, _):
        one = httpx.post(f"{url}/v1/track", json=track("v-1", timestamp=now), auth=AUTH)
        assert rows(store, "SELECT person_id FROM segment_members") == []
        two = httpx.post(f"{url}/v1/track", json=track("v-2", timestamp=now), auth=AUTH)
    assert one.status_code == two.status_code == 200
    person = rows(store, "SELECT DISTINCT person_id FROM events")[0][0]
    assert rows(store, "SELECT segment, person_id FROM segment_members") == [("viewers", person)]
    changes = rows(store, "SELECT segment, person_id, change FROM segment_changes")
    assert changes == [("viewers", person, "entered")]
