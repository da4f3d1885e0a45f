"""Bad input at collection is refused message by message, never a 500, on both stores.

Each case is a message a sender could really post: a known Segment field with another shape, a
value no store keeps (a NUL character, an integer beyond 64 bits, a document nested past the
limit), a time outside years 1900 to 2200. The valid messages of the same batch are stored,
each refused one lands in the quarantine with its field and reason, and the answer names it.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, server_key, serving
from import_helpers import quarantined

from surmesure.collect.events import ingest_file
from surmesure.store import Store

AUTH = (WRITE_KEY, "")


def rows(store: Store, query: str) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(sa.text(query)))


def track(message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "anonymousId": "device-1",
        "event": "Product Viewed",
        "properties": {"sku": "A1"},
        "timestamp": "2026-03-01T10:00:00Z",
        **extra,
    }


def identify(message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": "C1",
        "traits": {"firstName": "Anna"},
        "timestamp": "2026-03-01T10:00:00Z",
        **extra,
    }


def post_batch(url: str, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(
        f"{url}/v1/batch",
        content=content,
        auth=AUTH,
        headers={"Content-Type": "application/json"},
    )


def check_refused(
    store: Store, response: httpx.Response, expected: dict[str, str], stored: list[str]
) -> None:
    """``expected`` maps each refused messageId to its field; ``stored`` the messageIds kept
    (a call that stored something answers 200, one that stored nothing 400)."""
    assert response.status_code == (200 if stored else 400), response.text
    body = response.json()
    assert body["accepted"] == len(stored)
    assert {r["messageId"]: r["field"] for r in body["rejected"]} == expected
    assert all(r["field"] in r["reason"] for r in body["rejected"])
    assert sorted(r[0] for r in rows(store, "SELECT message_id FROM events")) == sorted(stored)
    kept = {
        r.location.removeprefix("messageId "): r.field
        for r in rows(store, "SELECT location, field FROM quarantine")
    }
    assert kept == expected


SHAPES: list[tuple[dict[str, Any], str]] = [
    (track("ctx-list", context=["fr-FR"]), "context"),
    (track("ctx-text", context="fr-FR"), "context"),
    (track("ctx-number", context=7), "context"),
    (track("props-list", properties=[1, 2]), "properties"),
    (identify("traits-text", traits="gold"), "traits"),
    (track("integrations-list", integrations=["All"]), "integrations"),
    (track("ts-number", timestamp=1_772_359_200), "timestamp"),
    (track("ts-bool", timestamp=True), "timestamp"),
    (track("sent-object", sentAt={"at": "now"}), "sentAt"),
    (track("ctx-page-text", context={"page": "/home"}), "context.page"),
    (track("ctx-ip-number", context={"ip": 127001}), "context.ip"),
    (track("ctx-library-list", context={"library": ["analytics.js"]}), "context.library"),
    (identify("address-text", traits={"address": "1 rue de la Paix"}), "traits.address"),
    (track("event-object", event={"name": "x"}), "event"),
]


def test_a_known_field_with_another_shape_is_refused_alone(store: Store) -> None:
    batch = [track("ok-1")]
    for message, _ in SHAPES:
        batch += [message, track(f"ok-after-{message['messageId']}")]
    with serving(store) as (url, _):
        response = post_batch(url, {"batch": batch})
    expected = {
        m["messageId"]: f"batch[{2 * k + 1}].{field}" for k, (m, field) in enumerate(SHAPES)
    }
    stored = [m["messageId"] for m in batch if m["messageId"].startswith("ok-")]
    check_refused(store, response, expected, stored)


def test_a_batch_context_merges_only_when_both_are_objects(store: Store) -> None:
    with serving(store) as (url, _):
        # the batch's context is merged under each message's own; a message whose own context
        # is a list cannot be merged and is refused, its neighbours stored (a 500 before)
        mixed = post_batch(
            url,
            {
                "batch": [track("m-ok"), track("m-list", context=[1]), track("m-ok-2")],
                "context": {"locale": "fr-FR"},
            },
        )
        check_refused(store, mixed, {"m-list": "batch[1].context"}, ["m-ok", "m-ok-2"])
        # a batch context that is not an object refuses every message, naming it
        shared = post_batch(url, {"batch": [track("s-1"), track("s-2")], "context": ["fr-FR"]})
        bad_sent = post_batch(url, {"batch": [track("t-1")], "sentAt": "0001-01-01T00:00:00Z"})
    assert shared.status_code == 400
    assert [(r["messageId"], r["field"]) for r in shared.json()["rejected"]] == [
        ("s-1", "context"),
        ("s-2", "context"),
    ]
    assert "object" in shared.json()["rejected"][0]["reason"]
    assert bad_sent.status_code == 400
    assert bad_sent.json()["rejected"][0]["field"] == "sentAt"
    assert sorted(r[0] for r in rows(store, "SELECT message_id FROM events")) == ["m-ok", "m-ok-2"]
    assert len(rows(store, "SELECT 1 FROM quarantine")) == 4


def nested(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        doc = {"a": doc}
    return doc


def test_values_no_store_keeps_are_refused_alone(store: Store) -> None:
    # sent as raw JSON text so that integers beyond 64 bits arrive as the sender wrote them
    messages = [
        orjson.dumps(track("ok-1")),
        orjson.dumps(identify("nul-trait", traits={"firstName": "An\u0000na"})),
        orjson.dumps(track("nul-key", properties={"s\u0000ku": "A1"})),
        orjson.dumps(track("nul-anon", anonymousId="device\u0000-1")),
        orjson.dumps(track("nul-event", event="Product\u0000Viewed")),
        orjson.dumps(identify("nul-email", traits={"email": "anna\u0000@example.com"})),
        orjson.dumps(track("nul-ctx", context={"userAgent": "Mozilla\u0000"})),
        orjson.dumps(track("nul-id\u0000")),
        b'{"type":"track","messageId":"big-prop","anonymousId":"d","event":"E",'
        b'"properties":{"n":9223372036854775808}}',
        b'{"type":"track","messageId":"small-prop","anonymousId":"d","event":"E",'
        b'"properties":{"items":[1,-9223372036854775809]}}',
        b'{"type":"identify","messageId":"huge-trait","userId":"C2",'
        b'"traits":{"points":123456789012345678901234567890}}',
        orjson.dumps(track("deep", properties=nested(40))),
        b'{"type":"track","messageId":"ok-edge","anonymousId":"d","event":"E",'
        b'"properties":{"max":9223372036854775807,"min":-9223372036854775808}}',
        orjson.dumps(track("ok-shallow", properties=nested(25))),
    ]
    body = b'{"batch":[' + b",".join(messages) + b"]}"
    with serving(store) as (url, _):
        response = post_batch(url, body)
    expected = {
        "nul-trait": "batch[1].traits.firstName",
        "nul-key": "batch[2].properties.s\\u0000ku",
        "nul-anon": "batch[3].anonymousId",
        "nul-event": "batch[4].event",
        "nul-email": "batch[5].traits.email",
        "nul-ctx": "batch[6].context.userAgent",
        "nul-id\u0000": "batch[7].messageId",
        "big-prop": "batch[8].properties.n",
        "small-prop": "batch[9].properties.items[1]",
        "huge-trait": "batch[10].traits.points",
        "deep": "batch[11].properties" + ".a" * 31,
    }
    assert response.status_code == 200, response.text  # three were stored
    refused = {r["messageId"]: r["field"] for r in response.json()["rejected"]}
    assert refused == expected
    assert response.json()["accepted"] == 3
    stored = sorted(r[0] for r in rows(store, "SELECT message_id FROM events"))
    assert stored == ["ok-1", "ok-edge", "ok-shallow"]
    # the limits themselves are kept, exactly
    props = rows(store, "SELECT properties FROM events WHERE message_id = 'ok-edge'")[0][0]
    props = orjson.loads(props) if isinstance(props, str) else props
    assert props == {"max": 2**63 - 1, "min": -(2**63)}
    # every refused message is in the quarantine, as far as a store can keep it
    kept = {r["location"]: (r["field"], r["payload"]) for r in quarantined(store)}
    assert len(kept) == len(expected)
    assert kept["messageId nul-trait"][1]["traits"]["firstName"] == "An\ufffdna"
    assert kept["messageId nul-id\ufffd"][0] == "batch[7].messageId"
    assert kept["messageId huge-trait"][1]["traits"]["points"] == "123456789012345678901234567890"
    assert kept["messageId big-prop"][1]["properties"]["n"] == str(2**63)


TIMES = [
    ("ts-year-1", "timestamp", "0001-01-01T00:00:00+14:00"),
    ("ts-year-9999", "timestamp", "9999-12-31T23:59:59-14:00"),
    ("ts-1800", "timestamp", "1800-06-01T12:00:00Z"),
    ("ts-2201", "timestamp", "2201-01-01T00:00:00Z"),
    ("orig-year-1", "originalTimestamp", "0001-01-01T00:00:00+14:00"),
    ("sent-year-1", "sentAt", "0001-01-01T00:00:00+14:00"),
    ("received-9999", "receivedAt", "9999-12-31T23:59:59-14:00"),
]


def test_times_outside_1900_to_2200_are_refused_alone(store: Store) -> None:
    batch: list[dict[str, Any]] = [
        track("ok-first", timestamp="1900-01-01T00:00:00Z"),
        track("ok-last", timestamp="2200-12-31T23:59:59Z"),
    ]
    for message_id, field, value in TIMES:
        message = track(message_id, **{field: value})
        if field == "originalTimestamp":
            del message["timestamp"]
        batch.append(message)
    with serving(store) as (url, _):
        response = post_batch(url, {"batch": batch})
    expected = {m: f"batch[{k + 2}].{f}" for k, (m, f, _) in enumerate(TIMES)}
    check_refused(store, response, expected, ["ok-first", "ok-last"])
    assert "1900 to 2200" in response.json()["rejected"][0]["reason"]
    when = sorted(r[0] for r in rows(store, "SELECT occurred_at FROM events"))
    assert [w.year for w in when] == [1900, 2200]


def test_a_single_call_with_a_bad_shape_is_a_400_naming_the_field(store: Store) -> None:
    with serving(store) as (url, _):
        context = httpx.post(f"{url}/v1/track", json=track("one", context=[1]), auth=AUTH)
        when = httpx.post(
            f"{url}/v1/identify",
            json=identify("two", timestamp="0001-01-01T00:00:00+14:00"),
            auth=AUTH,
        )
        nul = httpx.post(f"{url}/v1/page", json=track("three", name="Acc\u0000ueil"), auth=AUTH)
    assert [r.status_code for r in (context, when, nul)] == [400, 400, 400]
    assert context.json()["error"]["field"] == "context"
    assert when.json()["error"]["field"] == "timestamp"
    assert nul.json()["error"]["field"] == "name"
    assert rows(store, "SELECT message_id FROM events") == []
    assert len(rows(store, "SELECT 1 FROM quarantine")) == 3


def test_a_file_of_events_refuses_the_same_lines(store: Store, tmp_path: Path) -> None:
    lines = [
        orjson.dumps(track("f-ok-1")),
        orjson.dumps(track("f-ctx", context=[1])),
        orjson.dumps(track("f-nul", properties={"sku": "A\u00001"})),
        b'{"type":"track","messageId":"f-big","anonymousId":"d","event":"E",'
        b'"properties":{"n":18446744073709551616}}',
        orjson.dumps(track("f-year", timestamp="0001-01-01T00:00:00+14:00")),
        orjson.dumps(track("f-ok-2")),
    ]
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    result = ingest_file(store, path, source="web")
    assert result["accepted"] == 2 and result["quarantined"] == 4
    stored = sorted(r[0] for r in rows(store, "SELECT message_id FROM events"))
    assert stored == ["f-ok-1", "f-ok-2"]
    kept = {r.location: r.field for r in rows(store, "SELECT location, field FROM quarantine")}
    assert kept == {
        "line 2": "context",
        "line 3": "properties.sku",
        "line 4": "properties.n",
        "line 5": "timestamp",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/v1/people/1/why?days=9999999",
        "/v1/people/99999999999999999999/why",
        "/v1/people/99999999999999999999/segments",
        "/v1/people/%C2%B2/segments",
        "/v1/people/anonymous_id:a%00b/segments",
        "/v1/experiments/a%00b",
    ],
)
def test_out_of_range_paths_and_queries_are_a_400_naming_the_field(store: Store, path: str) -> None:
    read = server_key(store, "read")
    with serving(store) as (url, _):
        response = httpx.get(f"{url}{path}", auth=(read, ""))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["field"]
    assert error["field"] in {"query.days", "path.person_id", "REF", "path"}


def test_a_decision_for_an_id_beyond_64_bits_is_a_400(store: Store) -> None:
    decide = (server_key(store, "decide"), "")
    with serving(store) as (url, _):
        too_big = httpx.post(
            f"{url}/v1/decide",
            content=b'{"placement":"home_banner","person_id":99999999999999999999}',
            auth=decide,
        )
        nul = httpx.post(
            f"{url}/v1/decide",
            json={"placement": "home_banner", "customer_id": "C\u00001"},
            auth=decide,
        )
    assert too_big.status_code == 400 and too_big.json()["error"]["field"] == "person_id"
    assert nul.status_code == 400 and nul.json()["error"]["field"] == "customer_id"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_import_refuses_times_outside_1900_to_2200_and_nul_text(
    store: Store, tmp_path: Path, fmt: str
) -> None:
    from import_helpers import write_file

    from surmesure.collect.importer import import_file

    good = {
        "order_id": "OK",
        "ordered_at": "2024-03-01 10:00:00",
        "product_code": "P1",
        "quantity": "2",
        "unit_price": "4.5",
    }
    lines = [
        good,
        {**good, "order_id": "Y1", "ordered_at": "0001-01-01T00:00:00+14:00"},
        {**good, "order_id": "Y9", "ordered_at": "9999-12-31T23:59:59-14:00"},
        {**good, "order_id": "Y18", "ordered_at": "1800-01-01 00:00:00"},
        {**good, "order_id": "NUL", "description": "Tasse\u0000bleue"},
        {**good, "order_id": "EDGE", "ordered_at": "1900-01-01 00:00:00"},
    ]
    orders = import_file(store, "orders", write_file(tmp_path, "orders", fmt, lines))
    people = [
        {"customer_id": "C1", "birth_date": "0001-01-01"},
        {"customer_id": "C2", "first_name": "An\u0000na"},
        {"customer_id": "C3", "birth_date": "1985-05-17", "first_name": "Marie"},
    ]
    customers = import_file(store, "customers", write_file(tmp_path, "people", fmt, people))
    assert (orders.rows_accepted, orders.rows_quarantined) == (2, 4)
    assert (customers.rows_accepted, customers.rows_quarantined) == (1, 2)
    kept = sorted((r.location, r.field) for r in rows(store, "SELECT * FROM quarantine"))
    assert kept == [
        ("row 1", "birth_date"),
        ("row 2", "first_name"),
        ("row 2", "ordered_at"),
        ("row 3", "ordered_at"),
        ("row 4", "ordered_at"),
        ("row 5", "description"),
    ]
    assert sorted(r[0] for r in rows(store, "SELECT DISTINCT order_id FROM order_lines")) == [
        "EDGE",
        "OK",
    ]
