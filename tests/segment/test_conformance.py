"""The conformance table: the SQL compiler and the in-memory evaluator give the same members,
the expected ones, on DuckDB and on PostgreSQL, case by case."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from segment_world import load_world, members_sql, utc

from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment.evaluate import Snapshot, evaluate
from surmesure.segment.snapshot import load_snapshot, store_points, stores_named
from surmesure.store import Store

TABLE = orjson.loads((Path(__file__).parent / "cases" / "conformance.json").read_bytes())
BY_WORLD: dict[str, list[dict[str, Any]]] = defaultdict(list)
for _case in TABLE["cases"]:
    BY_WORLD[_case["world"]].append(_case)


def definitions(case: dict[str, Any]) -> tuple[SegmentDefinition, dict[str, SegmentDefinition]]:
    name = "case_" + case["id"].replace("-", "_")
    catalog = {d["name"]: SegmentDefinition.model_validate(d) for d in case.get("segments", [])}
    return SegmentDefinition.model_validate({"name": name, "where": case["where"]}), catalog


def test_table_is_versioned_and_large_enough() -> None:
    assert TABLE["version"] == 1
    ids = [c["id"] for c in TABLE["cases"]]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("world", sorted(BY_WORLD))
def test_both_interpreters_agree_with_the_table(store: Store, world: str) -> None:
    persons = load_world(store, TABLE["worlds"][world])
    half_life = float(TABLE["half_life_days"])
    failures: list[str] = []
    # a person's snapshot depends on the time and the stores named only: read once for the
    # cases that share them (most cases of a world are at one time), not once per case
    snapshots: dict[tuple[int, datetime, tuple[str, ...]], Snapshot] = {}
    for case in BY_WORLD[world]:
        definition, catalog = definitions(case)
        now = utc(case["now"])
        query = members_sql(store, definition, now, half_life, catalog)
        with store.connect() as conn:
            by_sql = sorted(int(r[0]) for r in conn.execute(query))
            places = store_points(conn, stores_named([definition, *catalog.values()]))
            in_memory = []
            for pid in persons:
                key = (pid, now, tuple(sorted(places)))
                if key not in snapshots:
                    snapshots[key] = load_snapshot(conn, pid, now, half_life, places)
                if evaluate(
                    definition, snapshots[key], now, catalog, index_key=blind.index_key(store)
                ):
                    in_memory.append(pid)
        if by_sql != case["expected"] or in_memory != case["expected"]:
            failures.append(
                f"{case['id']}: expected {case['expected']}, sql {by_sql}, memory {in_memory}"
            )
    assert failures == []
