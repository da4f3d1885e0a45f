"""Saving with versions, refreshes that record entries and exits, and real-time updates, on
DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from segment_world import load_world

from surmesure.domain.segments import SegmentDefinition
from surmesure.errors import InvalidInput, NotFound
from surmesure.segment import membership, realtime, repository
from surmesure.store import Store, schema

TABLE = orjson.loads((Path(__file__).parent / "cases" / "conformance.json").read_bytes())
NOW = datetime(2026, 3, 31, 12, 0)


@pytest.fixture(autouse=True)
def half_life(monkeypatch: pytest.MonkeyPatch) -> None:
    from surmesure.config import get_settings

    monkeypatch.setenv("SURMESURE_TRAIT_HALF_LIFE_DAYS", str(TABLE["half_life_days"]))
    get_settings.cache_clear()


def define(name: str, where: dict[str, Any]) -> SegmentDefinition:
    return SegmentDefinition.model_validate({"name": name, "where": where})


LYON = define("lyon", {"trait": {"name": "city", "op": "eq", "value": "Lyon"}})
VIEWERS = define("viewers", {"event": {"name": "Product Viewed", "within_days": 30}})
LYON_VIEWERS = define("lyon_viewers", {"all": [{"segment": "lyon"}, {"segment": "viewers"}]})


def changes(store: Store, segment: str) -> list[tuple[int, str, datetime]]:
    ch = schema.segment_changes
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(ch.c.person_id, ch.c.change, ch.c.changed_at)
            .where(ch.c.segment == segment)
            .order_by(ch.c.changed_at, ch.c.person_id)
        )
        return [(int(r[0]), str(r[1]), r[2]) for r in rows]


def members(store: Store, segment: str) -> list[int]:
    m = schema.segment_members
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.person_id).where(m.c.segment == segment).order_by(m.c.person_id)
        )
        return [int(r[0]) for r in rows]


def test_save_versions_and_refuses_whole(store: Store) -> None:
    assert repository.save(store, LYON, NOW) == repository.Saved("lyon", 1, changed=True)
    assert repository.save(store, LYON, NOW) == repository.Saved("lyon", 1, changed=False)
    paris = define("lyon", {"trait": {"name": "city", "op": "eq", "value": "Paris"}})
    assert repository.save(store, paris, NOW).version == 2
    with store.connect() as conn:
        assert [h["version"] for h in repository.history(conn, "lyon")] == [1, 2]
        assert repository.get(conn, "lyon") == paris
        assert repository.history(conn, "lyon")[0]["definition"] == LYON.document()
    with pytest.raises(InvalidInput):
        repository.save(store, LYON_VIEWERS, NOW)  # viewers is not saved
    cyclic = define("lyon", {"not": {"segment": "lyon"}})
    with pytest.raises(InvalidInput, match="cycle"):
        repository.save(store, cyclic, NOW)
    with store.connect() as conn:
        assert sorted(repository.catalog(conn)) == ["lyon"]
        assert repository.get(conn, "lyon") == paris
        count = sa.select(sa.func.count()).select_from(schema.segment_versions)
        assert conn.execute(count).scalar_one() == 2
        with pytest.raises(NotFound):
            repository.get(conn, "nope")


def test_refresh_records_who_entered_and_who_left(store: Store) -> None:
    load_world(store, TABLE["worlds"]["base"])
    for definition in (LYON, VIEWERS, LYON_VIEWERS):
        repository.save(store, definition, NOW)
    first = membership.refresh(store, None, NOW)
    assert {r.name: (r.members, r.entered, r.exited) for r in first} == {
        "lyon": (3, 3, 0),
        "viewers": (4, 4, 0),
        "lyon_viewers": (2, 2, 0),
    }
    assert members(store, "viewers") == [1, 2, 5, 8]
    assert membership.refresh(store, ["viewers"], NOW)[0].entered == 0
    later = datetime(2026, 4, 2, 12, 0)  # windows move: 2 leaves, 3's April 1st view counts
    again = membership.refresh(store, ["viewers"], later)[0]
    assert (again.members, again.entered, again.exited) == (4, 1, 1)
    assert members(store, "viewers") == [1, 3, 5, 8]
    assert changes(store, "viewers")[-2:] == [(2, "exited", later), (3, "entered", later)]
    with pytest.raises(NotFound):
        membership.refresh(store, ["nope"], NOW)


def test_size_and_overlap(store: Store) -> None:
    load_world(store, TABLE["worlds"]["base"])
    for definition in (LYON, VIEWERS):
        repository.save(store, definition, NOW)
    assert membership.size(store, LYON_VIEWERS, NOW) == 2
    assert membership.overlap(store, [LYON, VIEWERS], NOW) == [[3, 2], [2, 4]]


def test_real_time_updates_only_what_an_event_can_change(store: Store) -> None:
    load_world(store, TABLE["worlds"]["base"])
    for definition in (LYON, VIEWERS, LYON_VIEWERS):
        repository.save(store, definition, NOW)
    membership.refresh(store, None, NOW)
    with store.connect() as conn:
        catalog = repository.catalog(conn)
    assert realtime.affected(catalog, "track") == ["lyon_viewers", "viewers"]
    assert realtime.affected(catalog, "identify") == ["lyon", "lyon_viewers", "viewers"]
    assert realtime.affected(catalog, "order") == []
    at = datetime(2026, 3, 31, 13, 0)
    with store.begin() as conn:
        conn.execute(
            schema.events.insert().values(
                message_id="rt1",
                type="track",
                event="Product Viewed",
                person_id=3,
                node_id=3,
                occurred_at=at,
                received_at=at,
                properties={},
                source="web",
            )
        )
        found = realtime.on_event(store, conn, 3, "track", at)
    assert sorted((c.segment, c.change) for c in found) == [
        ("lyon_viewers", "entered"),
        ("viewers", "entered"),
    ]
    assert members(store, "lyon_viewers") == [1, 3, 8]
    assert changes(store, "viewers")[-1] == (3, "entered", at)
    later = datetime(2026, 4, 1, 12, 0)  # person 2's only view leaves the window
    with store.begin() as conn:
        assert realtime.on_event(store, conn, 2, "page", later) == [
            realtime.Change("viewers", 2, "exited", later)
        ]
        assert realtime.on_event(store, conn, 2, "page", later) == []
    assert members(store, "viewers") == [1, 3, 5, 8]
    # a new version of a segment is evaluated as saved, not as first compiled
    wider = define("viewers", {"event": {"name": "Product Viewed", "within_days": 400}})
    repository.save(store, wider, later)
    with store.begin() as conn:
        assert realtime.on_event(store, conn, 2, "page", later) == [
            realtime.Change("viewers", 2, "entered", later)
        ]
    assert members(store, "viewers") == [1, 2, 3, 5, 8]
