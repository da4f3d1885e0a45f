"""The conformance table on the Ibis interpreter: the same members, the expected ones, on
DuckDB and PostgreSQL (the store itself) and on a local Spark session (the store's tables
exported to Parquet), case by case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from segment_world import load_world, utc
from test_conformance import BY_WORLD, TABLE, definitions

from surmesure.derive.source import ibis_backend
from surmesure.protect import blind
from surmesure.segment.ibis_compile import members
from surmesure.segment.ibis_tables import (
    Tables,
    export_parquet,
    property_keys,
    spark_tables,
    store_tables,
)
from surmesure.store import Store, open_store

HALF_LIFE = float(TABLE["half_life_days"])


def keys_of(cases: list[dict[str, Any]]) -> tuple[str, ...]:
    found: set[str] = set()
    for case in cases:
        definition, catalog = definitions(case)
        found.update(property_keys([definition, *catalog.values()]))
    return tuple(sorted(found))


def failures(tables: Tables, cases: list[dict[str, Any]], index_key: bytes) -> list[str]:
    wrong = []
    for case in cases:
        definition, catalog = definitions(case)
        now = utc(case["now"])
        query = members(
            definition,
            tables,
            now=now,
            half_life_days=HALF_LIFE,
            catalog=catalog,
            index_key=index_key,
        )
        got = sorted(int(p) for p in query.to_pyarrow()["person_id"].to_pylist())
        if got != case["expected"]:
            wrong.append(f"{case['id']}: expected {case['expected']}, ibis {got}")
    return wrong


@pytest.mark.parametrize("world", sorted(BY_WORLD))
def test_ibis_agrees_with_the_table_on_the_store(store: Store, world: str) -> None:
    load_world(store, TABLE["worlds"][world])
    cases = BY_WORLD[world]
    with ibis_backend(store) as backend:
        tables = store_tables(backend, keys_of(cases))
        assert failures(tables, cases, blind.index_key(store)) == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ibis_agrees_with_the_table_on_spark(spark: Any, tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'store.duckdb'}")
    wrong = []
    try:
        for world, cases in sorted(BY_WORLD.items()):
            load_world(store, TABLE["worlds"][world])
            keys = keys_of(cases)
            with ibis_backend(store) as backend:
                written = export_parquet(store_tables(backend, keys), tmp_path / world)
            assert written["people"] == len(TABLE["worlds"][world].get("people", []))
            tables = spark_tables(spark, tmp_path / world, keys)
            wrong += failures(tables, cases, blind.index_key(store))
    finally:
        store.dispose()
    assert wrong == []
