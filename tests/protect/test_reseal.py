"""Changing SURMESURE_SEALED_TRAITS: ``surmesure key reseal`` seals the stored values of a name
newly in the list, opens back those of a name taken out, and names each saved segment that now
compares a sealed trait (``segment validate NAME`` refuses it too). On both stores."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from person_world import import_world, write_world

from conftest import invoke, invoke_json, opened_rows
from surmesure.config import SEALED_TRAITS
from surmesure.domain.segments import SegmentDefinition
from surmesure.segment import repository
from surmesure.store import Store

LYON = SegmentDefinition.model_validate(
    {"name": "lyon", "where": {"trait": {"name": "city", "op": "eq", "value": "Lyon"}}}
)


def _stored(store: Store, name: str) -> list[tuple[Any, bool]]:
    """Each stored value of trait ``name`` as held: its plain value, and whether sealed."""
    with store.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT CAST(value AS TEXT), sealed FROM traits WHERE name = :n"), {"n": name}
        )
        return sorted(((None if v is None else orjson.loads(v)), s is not None) for v, s in rows)


def test_reseal_follows_a_changed_list_and_names_the_segments_it_breaks(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_world(store, write_world(tmp_path))
    repository.save(store, LYON, datetime(2026, 1, 1))
    cities = sorted(r["value"] for r in opened_rows(store, "traits", "name = 'city'"))
    names = sorted(r["value"] for r in opened_rows(store, "traits", "name = 'first_name'"))
    assert "Lyon" in cities and all(sealed for _, sealed in _stored(store, "first_name"))
    assert not any(sealed for _, sealed in _stored(store, "city"))

    # city becomes a direct identifier; first_name no longer is
    changed = sorted((set(SEALED_TRAITS) - {"first_name"}) | {"city"})
    monkeypatch.setenv("SURMESURE_SEALED_TRAITS", orjson.dumps(changed).decode())
    out = invoke_json(monkeypatch, store.url, "key", "reseal")

    assert (out["sealed"], out["opened"]) == (len(cities), len(names))
    assert out["segments"] == [
        {"segment": "lyon", "place": "where.trait.op", "trait": "city", "op": "eq"}
    ]
    assert _stored(store, "city") == [(None, True)] * len(cities)
    assert _stored(store, "first_name") == sorted((n, False) for n in names)
    # readers see the same values either way
    assert sorted(r["value"] for r in opened_rows(store, "traits", "name = 'city'")) == cities
    refused = invoke(monkeypatch, store.url, "segment", "validate", "lyon")
    assert refused.exit_code != 0 and "sealed at rest" in refused.output
    again = invoke_json(monkeypatch, store.url, "key", "reseal")
    assert (again["sealed"], again["opened"]) == (0, 0)  # nothing left to change
