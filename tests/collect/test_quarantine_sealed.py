"""The quarantine at rest: each refused record's value and payload sealed under a key of its
own, recognised again by a keyed hash, shown whole by ``quarantine list/show``; migration 0017
seals the records a store held in clear (and indexes an alias's previous id). On both
stores."""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from import_helpers import count, quarantined, write_file

from conftest import invoke_json
from surmesure.collect import quarantine
from surmesure.collect.importer import import_file
from surmesure.protect import blind
from surmesure.store import Store, schema
from surmesure.store.migrate import alembic_config, upgrade

q = schema.quarantine
EMAIL, CUSTOMER = "quar.one@example.com", "CUST-QUAR-1"
LINE = {
    "order_id": "Q1",
    "ordered_at": "2024-03-01 10:00:00",
    "product_code": "P1",
    "quantity": "2",
    "unit_price": "4.5",
    "email": EMAIL,
    "customer_id": CUSTOMER,
}
AT = datetime(2026, 3, 1, 12, 0)


def _raw(store: Store) -> list[dict[str, object]]:
    """The quarantine's rows as stored, unopened."""
    with store.connect() as conn:
        query = sa.select(q).order_by(q.c.quarantine_id)
        return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(query)]


def _text(rows: list[dict[str, object]]) -> str:
    return orjson.dumps(rows, default=lambda v: bytes(v).hex()).decode()


def _keys(store: Store) -> list[int]:
    with store.connect() as conn:
        return sorted(conn.execute(sa.select(schema.person_keys.c.node_id)).scalars())


def test_a_refused_record_is_sealed_under_a_key_of_its_own(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_file(
        tmp_path, "lines", "csv", [{**LINE, "quantity": "two"}, {**LINE, "unit_price": "4,5"}]
    )
    result = import_file(store, "orders", path)
    assert result.rows_quarantined == 2

    raw = _raw(store)
    assert EMAIL not in _text(raw) and CUSTOMER not in _text(raw) and "two" not in _text(raw)
    assert all(r["payload"] is None and r["value"] is None and r["sealed"] for r in raw)
    ids = [int(str(r["quarantine_id"])) for r in raw]
    assert _keys(store) == sorted(-i for i in ids)  # one key per record, none a person's

    record = quarantine.get(store, ids[0])
    assert (record["field"], record["value"]) == ("quantity", "two")
    assert record["payload"]["email"] == EMAIL and "sealed" not in record
    listed = invoke_json(monkeypatch, store.url, "quarantine", "list")
    assert sorted(r["value"] for r in listed["recent"]) == ["4,5", "two"]
    shown = invoke_json(monkeypatch, store.url, "quarantine", "show", str(ids[1]))
    assert shown["payload"]["customer_id"] == CUSTOMER


def test_a_record_refused_again_is_recognised_by_its_keyed_hash(
    store: Store, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "lines", "csv", [LINE, {**LINE, "quantity": "two"}])
    import_file(store, "orders", path)
    elsewhere = tmp_path / "copy" / path.name
    elsewhere.parent.mkdir()
    shutil.copy(path, elsewhere)

    again = import_file(store, "orders", elsewhere)  # the same file, moved: the same records

    assert again.rows_quarantined == 1 and count(store, "quarantine") == 1
    (raw,) = _raw(store)
    text = quarantine.payload_json(quarantined(store)[0]["payload"])
    assert raw["digest"] != hashlib.sha256(text.encode()).hexdigest()  # keyed, not a plain hash
    # another record at the same place is another record
    changed = write_file(tmp_path, "lines", "csv", [LINE, {**LINE, "quantity": "three"}])
    assert import_file(store, "orders", changed).rows_quarantined == 1
    assert count(store, "quarantine") == 2


def _to(store: Store, revision: str, *, down: bool) -> None:
    config = alembic_config(store)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def test_migration_0017_seals_what_the_quarantine_held_in_clear(store: Store) -> None:
    _to(store, "0016", down=True)
    try:
        payload = {"Email": EMAIL, "Client": CUSTOMER, "_line_no": 2}
        with store.begin() as conn:
            for i, value in ((1, "two"), (2, None)):
                conn.execute(
                    sa.text(
                        "INSERT INTO quarantine (quarantine_id, origin, kind, source_name, "
                        "location, field, value, reason, payload, status, created_at) VALUES "
                        "(:i, 'import', 'orders', 'f.csv', :loc, 'quantity', :v, 'bad', :p, "
                        "'open', :at)"
                    ),
                    {"i": i, "loc": f"row {i}", "v": value, "p": orjson.dumps(payload).decode(),
                     "at": AT},
                )  # fmt: skip
            conn.execute(
                sa.text(
                    "INSERT INTO events (message_id, type, occurred_at, received_at, source, "
                    "properties) VALUES ('a-1', 'alias', :at, :at, 'web', :p)"
                ),
                {"at": AT, "p": orjson.dumps({"previous_id": " dev-quar-1"}).decode()},
            )
        upgrade(store)

        raw = _raw(store)
        assert EMAIL not in _text(raw) and CUSTOMER not in _text(raw) and "two" not in _text(raw)
        assert _keys(store) == [-2, -1]
        opened = quarantined(store)
        assert [(r["value"], r["payload"]) for r in opened] == [("two", payload), (None, payload)]
        with store.connect() as conn:
            props = conn.execute(sa.text("SELECT CAST(properties AS TEXT) FROM events")).scalar()
        assert orjson.loads(props) == {
            "previous_id": blind.index(store, "anonymous_id", "dev-quar-1")
        }
        # the records converted are recognised again when refused anew
        item = quarantine.Item("row 1", "quantity", "two", "bad", payload)
        with store.begin() as conn:
            added = quarantine.add(
                store, conn, [item], run_id=None, origin="import", kind="orders",
                source_name="elsewhere.csv", now=AT,
            )  # fmt: skip
        assert added == 0

        _to(store, "0016", down=True)  # the downgrade opens them back, and drops their keys
        with store.connect() as conn:
            back = conn.execute(sa.text("SELECT value, CAST(payload AS TEXT) FROM quarantine"))
            assert sorted((v or "", orjson.loads(p)) for v, p in back) == [
                ("", payload),
                ("two", payload),
            ]
        assert _keys(store) == []
    finally:
        upgrade(store)
