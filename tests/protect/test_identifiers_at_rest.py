"""Identifiers at rest: the person world imported, then events collected with a userId, an
anonymousId and an e-mail for Ana (from a trusted source and from the web, whose identifiers
are claims). The tables that hold identifiers (identifiers, identity claims, merges, orders,
derived metrics, and the events' userId and anonymousId) never held a value in clear: not in
their rows, not in a DuckDB file made of them, not in a ``pg_dump`` of them. Reads still give
the values (person show, export, look-ups by value), and once Ana is erased the sealed copies
kept from before no longer open. On both stores."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import orjson
import sqlalchemy as sa
from dumps import pg_dump
from person_world import ANA, BO, import_world, write_world

from surmesure.collect.events import ingest_file
from surmesure.decide.audience import find_person_id
from surmesure.derive.run import derive
from surmesure.protect import blind
from surmesure.protect.erase import erase_person
from surmesure.protect.export import export_person
from surmesure.store import Store
from surmesure.unify.profile import find_person, show

DEVICE = "ana-device-5f1c9e"
WEB_DEVICE = "ana-web-device-77aa"
VALUES = [*ANA.values(), DEVICE, WEB_DEVICE]
CONVERTED = ["identifiers", "identity_claims", "merges", "orders", "derived_metrics"]
"""Tables whose every column is this change's; of ``events``, ``user_id`` and
``anonymous_id`` (its context, properties and traits are sealed elsewhere)."""


def _events(tmp_path: Path) -> tuple[Path, Path]:
    trusted = [
        {
            "type": "identify",
            "messageId": "ana-id-1",
            "userId": ANA["customer_id"],
            "anonymousId": DEVICE,
            "timestamp": "2024-05-01T10:00:00Z",
            "traits": {"email": ANA["email"]},
        },
        {
            "type": "track",
            "event": "Product Viewed",
            "messageId": "ana-track-1",
            "anonymousId": DEVICE,
            "timestamp": "2024-05-01T10:05:00Z",
        },
    ]
    web = [
        {
            "type": "identify",
            "messageId": "ana-web-1",
            "userId": ANA["customer_id"],
            "anonymousId": WEB_DEVICE,
            "timestamp": "2024-05-02T10:00:00Z",
            "traits": {"email": ANA["email"]},
        }
    ]
    paths = tmp_path / "shop.jsonl", tmp_path / "web.jsonl"
    for path, messages in zip(paths, (trusted, web), strict=True):
        path.write_bytes(b"\n".join(orjson.dumps(m) for m in messages))
    return paths


def _world(store: Store, tmp_path: Path) -> None:
    import_world(store, write_world(tmp_path))
    shop, web = _events(tmp_path)
    assert ingest_file(store, shop, source="shop")["accepted"] == 2
    assert ingest_file(store, web, source="web")["accepted"] == 1
    with np.errstate(all="ignore"):  # two buyers: the CLV fit is degenerate, not the subject
        derive(store, as_of=date(2024, 6, 1))


def _leaks(text: str) -> list[str]:
    return [v for v in VALUES if v in text or v.lower() in text.lower()]


def _table_text(store: Store) -> str:
    """Every row of the converted tables, and the events' identifier columns, as text."""
    parts = []
    with store.connect() as conn:
        for table in CONVERTED:
            parts += [repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
        query = "SELECT user_id, anonymous_id FROM events"
        parts += [repr(tuple(r)) for r in conn.execute(sa.text(query))]
    return "\n".join(parts)


def test_identifiers_are_never_written_in_clear_and_shred_with_the_person(
    store: Store, tmp_path: Path
) -> None:
    _world(store, tmp_path)
    with store.connect() as conn:
        counts = {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in CONVERTED
        }
        user_ids = conn.execute(
            sa.text("SELECT count(*) FROM events WHERE user_id IS NOT NULL")
        ).scalar_one()
    assert all(counts.values()), counts  # every converted table holds rows of the world
    assert user_ids == 2
    assert _leaks(_table_text(store)) == []
    assert _leaks(_file_of_converted(store, tmp_path)) == []

    # reads give the values back
    profile = show(store, f"email:{ANA['email']}")
    held = {(i["kind"], i["value"]) for i in profile.identifiers}
    assert {("customer_id", ANA["customer_id"]), ("anonymous_id", DEVICE)} <= held
    assert {("email", ANA["email"]), ("phone", ANA["phone"])} <= held
    assert [c["value"] for c in profile.claims] == []  # the web device claimed, not Ana
    web_claims = show(store, f"anonymous_id:{WEB_DEVICE}").claims
    assert {(c["kind"], c["value"]) for c in web_claims} == {
        ("customer_id", ANA["customer_id"]),
        ("email", ANA["email"]),
    }
    vias = [m["evidence"]["via"] for m in profile.merges]
    assert vias and all(v["value"] in ANA.values() or v["value"] == DEVICE for v in vias)
    exported = export_person(store, f"customer_id:{ANA['customer_id']}").tables
    assert {e["user_id"] for e in exported["events"] if e["user_id"]} == {ANA["customer_id"]}
    assert {o["customer_ref"] for o in exported["orders"]} >= {ANA["customer_id"]}
    with store.connect() as conn:
        ana = find_person(conn, f"email:{ANA['email']}").person_id
        assert find_person_id(conn, customer_id=f" {ANA['customer_id']} ") == ana
        assert find_person_id(conn, anonymous_id=DEVICE) == ana
        ident = sa.text("SELECT node_id, sealed FROM identifiers WHERE person_id = :p")
        kept = [(int(n), bytes(s)) for n, s in conn.execute(ident, {"p": ana})]
        bo = find_person(conn, f"email:{BO['email']}")
        claims = sa.text("SELECT holder_id, sealed FROM identity_claims")
        kept_claims = [(int(n), bytes(s)) for n, s in conn.execute(claims)]
    assert len(kept) == 5  # e-mail, phone, customer id, card, device

    erase_person(store, f"email:{ANA['email']}", confirmed=True)

    keyring = blind.ring(store)
    assert keyring.index("email", ANA["email"]) == blind.index(store, "email", ANA["email"])
    with store.connect() as conn:
        assert keyring.open_many(conn, [n for n, _ in kept], [s for _, s in kept]) == [None] * len(
            kept
        )
        # the web device's claims on her identifiers are sealed under her node: shredded too
        opened = keyring.open_many(conn, [n for n, _ in kept_claims], [s for _, s in kept_claims])
        assert opened == [None, None]
        still = find_person(conn, f"email:{BO['email']}")
        assert still.person_id == bo.person_id  # Bo is untouched
    assert _leaks(_table_text(store)) == []


def _file_of_converted(store: Store, tmp_path: Path) -> str:
    """The bytes the store writes for the converted tables, as text: on DuckDB a fresh
    database file holding a copy of them (after ``CHECKPOINT``), on PostgreSQL a ``pg_dump``
    of them (``-t``) and a dump of the events' identifier columns copied into a table."""
    if store.is_duckdb:
        copy = tmp_path / "copy.duckdb"
        with store.engine.connect() as conn:
            conn.exec_driver_sql(f"ATTACH '{copy}' AS copy_db")
            for table in CONVERTED:
                conn.exec_driver_sql(f"CREATE TABLE copy_db.{table} AS SELECT * FROM {table}")
            conn.exec_driver_sql(
                "CREATE TABLE copy_db.event_ids AS SELECT user_id, anonymous_id FROM events"
            )
            conn.commit()
            conn.exec_driver_sql("CHECKPOINT copy_db")
            conn.exec_driver_sql("DETACH copy_db")
            conn.commit()
        return copy.read_bytes().decode("latin-1")
    with store.begin() as conn:
        conn.execute(sa.text("CREATE TABLE event_ids AS SELECT user_id, anonymous_id FROM events"))
    text = pg_dump(store, tmp_path / "dump.sql", *CONVERTED, "event_ids")
    assert "COPY public.identifiers" in text and "COPY public.event_ids" in text
    return text
