"""Erasure that sticks: an erased person's identifiers are suppressed, so no replayed message,
re-imported file or quarantine replay brings the person back, until a new consent re-admits an
identifier. On both stores, the API on a real server."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, serving
from import_helpers import quarantined, write_file
from person_world import ANA, BO, CONSENTS, count_where, import_world, person_of, write_world

from surmesure.collect.events import ingest_file
from surmesure.collect.importer import import_file
from surmesure.collect.replay import replay
from surmesure.config import get_settings
from surmesure.protect import atrest, blind
from surmesure.protect.erase import erase_person
from surmesure.protect.suppression import Hasher
from surmesure.store import Store, schema

ERASED_PAYLOAD_KEYS = {"_erased"}


def _rows(store: Store, query: str, **params: Any) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(sa.text(query), params))


def _holders(store: Store, values: list[str]) -> list[str]:
    """Every ``table.column`` whose text holds one of ``values`` (case-insensitive)."""
    found: list[str] = []
    with store.connect() as conn:
        for table in schema.metadata.sorted_tables:
            for column in table.c:
                if not isinstance(column.type, sa.String | sa.Text | sa.JSON):
                    continue
                text = sa.func.lower(sa.cast(column, sa.Text))
                for value in values:
                    n = conn.execute(
                        sa.select(sa.func.count())
                        .select_from(table)
                        .where(text.contains(value.lower()))
                    ).scalar_one()
                    if n:
                        found.append(f"{table.name}.{column.name} holds {value}")
    return found


def _erased_records(store: Store) -> list[Any]:
    return [SimpleNamespace(**r) for r in quarantined(store, "reason = 'erased'")]


def _payload(row: Any) -> dict[str, Any]:
    payload = row.payload
    return payload if isinstance(payload, dict) else orjson.loads(payload)


def _identify(message_id: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": "C-ERASE-1",
        "anonymousId": "device-erase-1",
        "traits": {"email": "Nina.Roux@example.com", "firstName": "Nina", "phone": "0611223344"},
        "timestamp": "2026-03-01T10:00:00.000Z",
    }


def _track(message_id: str, anonymous_id: str) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "event": "Product Viewed",
        "timestamp": "2026-03-01T10:05:00.000Z",
    }


NINA = ["C-ERASE-1", "device-erase-1", "nina.roux@example.com", "+33611223344", "Nina"]


def test_an_old_message_replayed_over_http_does_not_bring_the_person_back(store: Store) -> None:
    with serving(store) as (url, _), httpx.Client(base_url=url, auth=(WRITE_KEY, "")) as client:
        first = client.post(
            "/v1/batch", json={"batch": [_identify("m-1"), _track("m-2", "device-erase-1")]}
        )
        assert first.status_code == 200 and first.json()["accepted"] == 2
        erasure = erase_person(store, "customer_id:C-ERASE-1", confirmed=True)
        assert erasure.suppressed == 4
        assert count_where(store, "people", "TRUE") == 0

        again = client.post(
            "/v1/batch",
            json={
                "batch": [
                    _identify("m-1"),  # the same message, sent again
                    _identify("m-1-new"),  # the same content under a new messageId
                    _track("m-3", "device-erase-1"),  # the erased device
                    _track("m-4", "device-other"),  # somebody else: stored
                ]
            },
        )
        invalid = client.post(  # refused for its timestamp, but it names the erased e-mail
            "/v1/identify", json={**_identify("m-5"), "timestamp": "yesterday"}
        )
    # answered as stored (they are, in the quarantine): the public key cannot tell who was erased
    assert again.status_code == 200
    assert again.json() == {"success": True, "accepted": 4, "duplicate": 0}
    assert invalid.status_code == 400
    assert [r.message_id for r in _rows(store, "SELECT message_id FROM events")] == ["m-4"]
    assert count_where(store, "people", "TRUE") == 1  # the other device only
    erased = _erased_records(store)
    assert [(r.kind, r.location) for r in erased] == [
        ("events", "messageId m-1"),
        ("events", "messageId m-1-new"),
        ("events", "messageId m-3"),
        ("events", "messageId m-5"),
    ]
    assert [_payload(r) for r in erased] == [
        {"_erased": ["anonymous_id", "customer_id", "email", "phone"]},
        {"_erased": ["anonymous_id", "customer_id", "email", "phone"]},
        {"_erased": ["anonymous_id"]},
        {"_erased": ["anonymous_id", "customer_id", "email", "phone"]},
    ]
    assert all(r.value is None for r in erased)
    assert _holders(store, NINA) == []


def test_an_events_file_replayed_after_erasure_is_refused(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [orjson.dumps(m) for m in (_identify("f-1"), _track("f-2", "d2"))]
    broken = b'{"type": "identify", "userId": "C-9", "traits": {"email": "nina.roux@example.com"'
    path.write_bytes(b"\n".join([*lines, broken]))
    assert ingest_file(store, path)["accepted"] == 2
    erase_person(store, "email:nina.roux@example.com", confirmed=True)

    again = ingest_file(store, path)

    assert again["accepted"] == 0 and again["quarantined"] == 2
    assert again["quarantined_by_reason"] == {"erased": 2}  # the unreadable line too
    assert again["duplicate"] == 1  # the other device's event, already stored
    assert count_where(store, "identifiers", "kind = 'customer_id'") == 0
    assert _holders(store, NINA) == []


def test_reimporting_the_crm_file_does_not_bring_the_person_back(
    store: Store, tmp_path: Path
) -> None:
    files = write_world(tmp_path)
    import_world(store, files)
    bo = person_of(store, "email", BO["email"])
    erase_person(store, f"email:{ANA['email']}", confirmed=True)
    bo_identifiers = count_where(store, "identifiers", "person_id = :p", p=bo)

    results = import_world(store, files)

    by_kind = {r.kind + ":" + Path(r.path).stem: r for r in results}
    crm = by_kind["customers:customers_crm"]
    # three rows name Ana (one refused for its birth date anyway), one is Bo's, already known
    assert crm.quarantined_by_reason == {"erased": 3}
    assert crm.rows_duplicate == 1 and crm.new_people == 0
    assert by_kind["customers:customers_shop"].quarantined_by_reason == {"erased": 1}
    assert by_kind["orders:orders"].quarantined_by_reason == {"erased": 4}
    assert by_kind["surveys:surveys"].quarantined_by_reason.get("erased") == 1
    assert by_kind["email:email_activity"].quarantined_by_reason == {"erased": 1}
    assert by_kind["consents:consents"].quarantined_by_reason == {"erased": 2}
    assert sum(r.new_people for r in results) == 0
    assert count_where(store, "identifiers", "person_id = :p", p=bo) == bo_identifiers
    assert _holders(store, [*ANA.values(), "06 12 34 56 78", "Anna"]) == []
    # a row that cannot even be read, naming her phone, is refused as erased too
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("customer_id,phone,city\nC-77,06 12 34 56 78,Lyon,extra\n")
    assert import_file(store, "customers", ragged).quarantined_by_reason == {"erased": 1}
    assert _holders(store, [*ANA.values(), "06 12 34 56 78", "Anna", "C-77"]) == []
    erased = _erased_records(store)
    assert {tuple(_payload(r)) for r in erased} == {("_erased",)}
    assert all(r.value is None for r in erased)
    # a refused record of an erased person can never be replayed
    replayed = replay(store)
    assert replayed.not_replayable == len(erased) == 13 and replayed.replayed == 0
    assert count_where(store, "people", "TRUE") == count_where(
        store, "people", "person_id = :p OR merged_into = :p", p=bo
    )


def test_a_quarantine_replay_does_not_bring_the_person_back(store: Store, tmp_path: Path) -> None:
    # the CRM's first file put the customer id under a column the mapping did not name: its
    # rows were quarantined, and the eraser cannot tell "Client" holds a customer id
    unmapped = write_file(
        tmp_path,
        "crm_first",
        "csv",
        [{"Client": ANA["customer_id"], "first_name": "Ana", "city": "Lyon"}],
    )
    first = import_file(store, "customers", unmapped, source="crm")
    assert first.rows_quarantined == 1
    import_world(store, write_world(tmp_path))
    erase_person(store, f"customer_id:{ANA['customer_id']}", confirmed=True)
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("kind: customers\nsource: crm\ncolumns: {customer_id: Client}\n")
    q = schema.quarantine
    with store.connect() as conn:
        held, sealed = conn.execute(
            sa.select(q.c.quarantine_id, q.c.sealed).where(q.c.run_id == first.run_id)
        ).one()

    result = replay(store, run_id=first.run_id, mapping=fixed)

    assert result.replayed == 0 and result.new_people == 0
    assert result.still_open_by_reason == {"erased": 1}
    customer = blind.index(store, "customer_id", ANA["customer_id"])
    assert count_where(store, "identifiers", "value = :v", v=customer) == 0
    (record,) = [SimpleNamespace(**r) for r in quarantined(store, "run_id = :r", r=first.run_id)]
    assert record.reason == "erased" and _payload(record) == {"_erased": ["customer_id"]}
    assert _holders(store, [ANA["customer_id"]]) == []
    # the record as it was read is shredded: its former key is gone, a copy no longer opens
    with store.connect() as conn, pytest.raises(ValueError, match="does not open"):
        atrest.keyring(conn).open(conn, -held, bytes(sealed))


def _consent(recorded_at: datetime, granted: bool = True, **who: str) -> dict[str, Any]:
    return {
        **who,
        "purpose": "marketing",
        "channel": "email",
        "granted": granted,
        "recorded_at": recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
    }


def test_a_consent_granted_after_the_erasure_readmits_its_identifiers(
    store: Store, tmp_path: Path
) -> None:
    files = write_world(tmp_path)
    import_world(store, files)
    erase_person(store, f"email:{ANA['email']}", confirmed=True)
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    # the old consent file (granted, but before the erasure) and a refusal after it lift nothing
    old = import_file(store, "consents", write_file(tmp_path, "old", "csv", CONSENTS))
    refusal = import_file(
        store,
        "consents",
        write_file(tmp_path, "no", "csv", [_consent(later, False, email=ANA["email"])]),
    )
    assert old.quarantined_by_reason == {"erased": 2}
    assert refusal.quarantined_by_reason == {"erased": 1}
    assert (
        count_where(store, "identifiers", "value = :v", v=blind.index(store, "email", ANA["email"]))
        == 0
    )

    granted = import_file(
        store,
        "consents",
        write_file(tmp_path, "yes", "csv", [_consent(later, email=ANA["email"])]),
    )

    assert granted.rows_accepted == 1 and granted.new_people == 1
    ana = person_of(store, "email", ANA["email"])
    assert count_where(store, "consents", "person_id = :p AND granted", p=ana) == 1
    assert count_where(store, "suppressions", "lifted_at IS NOT NULL") == 1
    # only the e-mail came back: a row also naming her customer id is still refused
    crm = import_file(store, "customers", files[1][1], source="crm")
    assert crm.quarantined_by_reason == {"erased": 3}
    assert count_where(store, "identifiers", "person_id = :p", p=ana) == 1
    shop = write_file(tmp_path, "shop", "csv", [{"email": ANA["email"], "first_name": "Ana"}])
    assert import_file(store, "customers", shop).rows_accepted == 1
    # erased again, suppressed again
    assert erase_person(store, str(ana), confirmed=True).suppressed == 1
    assert import_file(store, "customers", shop).quarantined_by_reason == {"erased": 1}


def test_the_suppression_list_holds_keyed_hashes_only(store: Store, tmp_path: Path) -> None:
    import_world(store, write_world(tmp_path))
    erasure = erase_person(store, f"email:{ANA['email']}", confirmed=True, reason="asked by mail")

    assert erasure.suppressed == 4
    held = _rows(store, "SELECT * FROM suppressions ORDER BY kind")
    key = get_settings().suppression_key.encode()
    expected = sorted(
        (kind, hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest())
        for kind, value in ANA.items()
    )
    assert [(r.kind, r.identifier_hash) for r in held] == expected
    assert {r.reason for r in held} == {"asked by mail"}
    assert all(r.lifted_at is None and r.erased_at is not None for r in held)
    assert _holders(store, [*ANA.values(), "Ana", "Anna"]) == []
    # the same identifier under another key is another hash: the list says nothing without it
    assert Hasher("another-secret-key-123")("email", ANA["email"]) != expected[1][1]
