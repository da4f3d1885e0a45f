"""The quarantine's marks: an erasure (and an export) opens only the records marked with one
of the person's identifiers, however many others the quarantine holds, and finds the same
records as opening them all; records stored before the marks are marked by the migration.
On both stores."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from import_helpers import quarantined as quarantined_rows
from person_world import ANA, import_world, write_world

from surmesure.collect import quarantine
from surmesure.protect import quarantined
from surmesure.protect.erase import erase_person
from surmesure.store import Store, schema
from surmesure.store.migrate import alembic_config, upgrade

NOW = datetime(2026, 12, 4, 12, 0)


def _others(store: Store, count: int) -> None:
    items = [
        quarantine.Item(
            f"row {i}",
            "email",
            f"client{i}@example.com",
            "not an e-mail address",
            {"email": f"client{i}@example.com", "phone": f"06 12 34 {i % 100:02d} {i // 100:02d}"},
        )
        for i in range(count)
    ]
    with store.begin() as conn:
        quarantine.add(
            store, conn, items, run_id=None, origin="api", kind="event", source_name="t", now=NOW
        )


def test_an_erasure_opens_only_the_records_marked_with_the_persons_identifiers(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_world(store, write_world(tmp_path))
    _others(store, 300)
    assert len(quarantined_rows(store)) > 300
    opened: list[int] = []
    open_records = quarantined.open_records

    def counting(conn, rows):  # type: ignore[no-untyped-def]
        opened.extend(int(r["quarantine_id"]) for r in rows)
        open_records(conn, rows)

    monkeypatch.setattr(quarantined, "open_records", counting)
    erasure = erase_person(store, f"email:{ANA['email']}", confirmed=True)
    assert erasure.records_shredded == 1
    assert erasure.deleted["quarantine"] == 1
    assert len(opened) == 1  # not the 300 others
    with store.connect() as conn:
        assert quarantined.marked(conn, [ANA["email"].lower()]) == []  # her marks went too


def test_a_phone_written_another_way_is_still_found_by_its_mark(store: Store) -> None:
    _others(store, 5)
    with store.connect() as conn:
        # "06 12 34 03 00" in a record: the person's number is stored normalized
        found = quarantined.marked(conn, ["+33612340300"])
    assert len(found) == 1


def test_the_migration_marks_the_records_stored_before_it(store: Store, tmp_path: Path) -> None:
    import_world(store, write_world(tmp_path))
    with store.connect() as conn:
        before = conn.execute(schema.quarantine_marks.select()).all()
        hers = quarantined.marked(conn, [ANA["email"].lower()])
    assert before and len(hers) == 1
    config = alembic_config(store)
    before_marks = ScriptDirectory.from_config(config).get_revision("0025").down_revision
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        config.attributes["store"] = store
        command.downgrade(config, str(before_marks))
    upgrade(store)
    with store.connect() as conn:
        after = conn.execute(schema.quarantine_marks.select()).all()
        assert sorted(after) == sorted(before)
        assert quarantined.marked(conn, [ANA["email"].lower()]) == hers
