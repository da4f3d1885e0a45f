"""Personal values sealed at rest: direct-identifier traits, event contexts and identify traits,
decisions. Nothing of them is written in clear, every reader opens them, and erasure shreds
them: the blobs read before it no longer open. On both stores."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from dumps import stored_bytes
from import_helpers import write_file
from person_world import ANA, import_world, write_world

from surmesure.collect.events import ingest_file
from surmesure.collect.importer import import_file
from surmesure.decide.decisions import why
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.errors import InvalidInput
from surmesure.protect import atrest
from surmesure.protect.erase import erase_person
from surmesure.protect.export import export_person
from surmesure.segment import repository
from surmesure.segment.definitions import check_sealed, parse
from surmesure.segment.membership import members
from surmesure.store import Store
from surmesure.unify.profile import find_person, resolved_traits

NOW = datetime(2024, 5, 10, 18, 0)
FIRST, LAST, STREET = "Ysoline", "Quesnel-Vautrin", "17 rue Merciere"
PHONE = "+33699887766"
IP, AGENT = "203.0.113.77", "Mozilla/5.0 (SecretPhone 9; Ysolphone)"
#: values stored nowhere but in the sealed tables (identifiers are another table's matter)
IN_CLEAR_NOWHERE = [FIRST, LAST, STREET, IP, AGENT]
SEALED_TABLES = ("traits", "events", "decisions")

CRM_MORE = [
    {
        "customer_id": ANA["customer_id"],
        "first_name": FIRST,
        "last_name": LAST,
        "street": STREET,
        "birth_date": "1990-05-17",
        "city": "Lyon",
        "observed_at": "2024-05-01 09:00:00",
    }
]


def _identify(n: int, traits: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"ident-{n}",
        "userId": ANA["customer_id"],
        "anonymousId": f"device-{n}",
        "traits": traits,
        "context": {"ip": IP, "userAgent": AGENT},
        "timestamp": "2024-05-02T10:00:00Z",
    }


def _world(store: Store, tmp_path: Path) -> int:
    import_world(store, write_world(tmp_path))
    import_file(store, "customers", write_file(tmp_path, "crm_more", "csv", CRM_MORE), source="crm")
    lines = [
        _identify(1, {"lastName": LAST, "phone": PHONE, "city": "Lyon"}),
        _identify(2, {"street": STREET}),
        {
            "type": "track",
            "messageId": "track-1",
            "userId": ANA["customer_id"],
            "event": "Product Viewed",
            "properties": {"sku": "P1"},
            "context": {"ip": IP, "userAgent": AGENT},
            "timestamp": "2024-05-02T10:05:00Z",
        },
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    assert ingest_file(store, path, source="crm")["accepted"] == 3
    with store.connect() as conn:
        return find_person(conn, f"customer_id:{ANA['customer_id']}").person_id


def _stored(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row of the sealed tables, as stored."""
    with store.connect() as conn:
        return {
            t: [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]
            for t in SEALED_TABLES
        }


def _dump(store: Store, tmp_path: Path) -> bytes:
    """The bytes the store holds of the sealed tables: the DuckDB file after a checkpoint, or
    a pg_dump of the tables."""
    return stored_bytes(store, tmp_path / "dump.sql", *SEALED_TABLES)


def test_personal_values_are_sealed_read_back_and_shredded_by_erasure(
    store: Store, tmp_path: Path
) -> None:
    person = _world(store, tmp_path)
    banner = Library(EXAMPLES).named("home_banner")
    request = DecideRequest(placement="home_banner", person_id=person)
    result = decide(store, request, banner, now=NOW)
    assert FIRST in orjson.dumps(result).decode()  # the reader opened the sealed first name

    # what the readers see: values opened
    with store.connect() as conn:
        traits = resolved_traits(conn, person, NOW, 365.0)
    assert (traits["first_name"].value, traits["last_name"].value) == (FIRST, LAST)
    assert traits["street"].value == STREET and traits["city"].value == "Lyon"
    exported = export_person(store, f"customer_id:{ANA['customer_id']}").tables
    identify = next(e for e in exported["events"] if e["message_id"] == "ident-1")
    assert identify["context"] == {"ip": IP, "userAgent": AGENT}
    assert identify["properties"]["phone"] == PHONE
    track = next(e for e in exported["events"] if e["message_id"] == "track-1")
    assert (track["context"]["ip"], track["properties"]) == (IP, {"sku": "P1"})
    assert any(t["value"] == STREET for t in exported["traits"])
    assert "sealed" not in exported["traits"][0]
    said = why(store, person, now=NOW, days=1)
    assert FIRST in orjson.dumps(said[0]["result"]).decode()

    # what the store holds: none of them in clear
    stored = _stored(store)
    text = orjson.dumps(stored, default=lambda v: bytes(v).hex()).decode()
    for secret in [*IN_CLEAR_NOWHERE, PHONE]:
        assert secret not in text
    sealed_traits = [r for r in stored["traits"] if r["name"] in ("first_name", "street")]
    assert sealed_traits and all(r["value"] is None and r["sealed"] for r in sealed_traits)
    assert any(r["name"] == "city" and r["value"] is not None for r in stored["traits"])
    by_id = {r["message_id"]: r for r in stored["events"]}
    assert by_id["ident-1"]["properties"] is None and by_id["ident-1"]["context"] is None
    assert by_id["track-1"]["properties"] is not None  # segments read track properties
    assert all(r["sealed"] for r in stored["decisions"] if r["person_id"] is not None)
    raw = _dump(store, tmp_path)
    for secret in IN_CLEAR_NOWHERE:
        assert secret.encode() not in raw

    kept = [
        (r["node_id"] if t != "decisions" else r["person_id"], bytes(r["sealed"]))
        for t in SEALED_TABLES
        for r in stored[t]
        if r["sealed"] is not None and r["person_id"] == person
    ]
    others = [
        (r["node_id"], bytes(r["sealed"]))
        for r in stored["traits"]
        if r["sealed"] is not None and r["person_id"] != person
    ]
    assert len(kept) > 10 and others  # Ana's traits, events and decision; Bo's traits
    nodes, blobs = [n for n, _ in kept], [b for _, b in kept]
    with store.connect() as conn:
        assert all(atrest.open_texts(conn, nodes, blobs))

    erase_person(store, f"customer_id:{ANA['customer_id']}", confirmed=True)

    with store.connect() as conn:
        assert atrest.open_texts(conn, nodes, blobs) == [None] * len(kept)
        assert all(atrest.open_texts(conn, [n for n, _ in others], [b for _, b in others]))
    for secret in IN_CLEAR_NOWHERE:
        assert secret.encode() not in _dump(store, tmp_path)


def _trait(name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"trait": {"name": name, "op": op, "value": value}}


def test_a_segment_tests_whether_a_sealed_trait_is_set_but_never_compares_it(
    store: Store, tmp_path: Path
) -> None:
    person = _world(store, tmp_path)
    ysolines = parse({"name": "ysolines", "where": _trait("first_name", "eq", FIRST)})
    with pytest.raises(InvalidInput) as refused:
        check_sealed(ysolines, store.settings.sealed_traits)
    assert "first_name" in str(refused.value) and "sealed" in str(refused.value)
    assert refused.value.field == "where.trait.op"
    with pytest.raises(InvalidInput, match="sealed"):  # nor saved, whoever saves it
        repository.save(store, ysolines, NOW)
    check_sealed(ysolines, ["last_name"])  # a store whose settings seal first names no more
    with pytest.raises(InvalidInput, match="identify"):
        parse(
            {
                "name": "lasts",
                "where": {"event": {"type": "identify", "properties": {"lastName": LAST}}},
            }
        )
    named = parse({"name": "named", "where": _trait("last_name", "exists")})
    lyon = parse({"name": "lyon", "where": _trait("city", "eq", "Lyon")})
    with store.connect() as conn:
        assert person in members(conn, store, named, NOW, {})
        assert person in members(conn, store, lyon, NOW, {})
