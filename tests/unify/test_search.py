"""Finding people by an identifier typed as it comes, on both stores, and ``person find``."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import invoke_json
from surmesure.collect.importer import import_file
from surmesure.errors import InvalidInput
from surmesure.store import Store, schema
from surmesure.unify.search import Match, search


def _customers(store: Store, path: Path, *lines: str) -> None:
    path.write_text("customer_id,email,phone,loyalty_card,first_name\n" + "\n".join(lines) + "\n")
    assert import_file(store, "customers", path, source="crm").rows_quarantined == 0


def _person_of(store: Store, customer_id: str) -> int:
    people = {m.person_id for m in search(store, f"customer_id:{customer_id}")}
    assert len(people) == 1
    return people.pop()


def test_any_identifier_finds_its_person(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _customers(store, tmp_path / "a.csv", "C1,marie@example.com,+33612345678,,Marie")
    marie = _person_of(store, "C1")
    # a card whose number is Marie's person id: typed alone, it names both people
    _customers(store, tmp_path / "b.csv", f"C2,bruno@example.com,,{marie},Bruno")
    bruno = _person_of(store, "C2")
    assert marie != bruno
    for typed in ("  MARIE@Example.com ", "06 12 34 56 78", "+33 6 12 34 56 78", "C1"):
        assert [m.person_id for m in search(store, typed)] == [marie], typed
    assert search(store, "06 12 34 56 78") == [Match(marie, ("phone",))]
    both = search(store, str(marie))
    assert both == sorted(
        [Match(marie, ("person_id",)), Match(bruno, ("loyalty_card",))],
        key=lambda m: m.person_id,
    )
    assert search(store, f"loyalty_card:{marie}") == [Match(bruno, ("loyalty_card",))]
    assert search(store, "nobody@example.com") == []
    assert search(store, "email:nobody@example.com") == []
    with pytest.raises(InvalidInput) as empty:
        search(store, "   ")
    assert empty.value.field == "q"
    with pytest.raises(InvalidInput) as bad:
        search(store, "email:not an address")
    assert "not an e-mail address" in bad.value.message
    found = invoke_json(monkeypatch, store.url, "person", "find", str(marie))
    assert found["people"] == [{"person_id": m.person_id, "via": list(m.via)} for m in both]
    a = schema.audit_log
    with store.connect() as conn:
        detail = conn.execute(
            sa.select(a.c.detail).where(a.c.action == "person.search")
        ).scalar_one()
    assert detail == {"found": 2}  # the count, never the identifier typed
