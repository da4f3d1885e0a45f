"""The schema split by stage: each table owned by one stage's module, and the split changes
nothing Alembic or DDL can see."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from schema_shape import dumps, shape

from surmesure.store import schema

SNAPSHOT = Path(__file__).with_name("schema_shape.json")
STORE = Path(schema.__file__).parent


def test_the_metadata_has_the_recorded_tables_columns_types_indexes_and_constraints() -> None:
    # schema_shape.json was computed from the single schema module before the split; a change
    # of the schema comes with a migration, after which `python tests/store/schema_shape.py`
    # records the new shape
    assert dumps(shape()) == SNAPSHOT.read_text()


def test_every_table_is_owned_by_exactly_one_stage_module() -> None:
    owners: dict[str, list[str]] = {}
    for stage, module in schema.STAGES.items():
        for table in module.TABLES:
            owners.setdefault(table.name, []).append(stage)
    assert {name: stages for name, stages in owners.items() if len(stages) != 1} == {}
    assert sorted(owners) == sorted(schema.metadata.tables)


def test_a_stage_module_lists_exactly_the_tables_it_defines() -> None:
    for stage, module in schema.STAGES.items():
        defined = {v.name for v in vars(module).values() if isinstance(v, sa.Table)}
        assert defined == {t.name for t in module.TABLES}, stage


def test_every_schema_module_is_a_stage_and_every_table_is_re_exported() -> None:
    modules = {p.stem.removeprefix("schema_") for p in STORE.glob("schema_*.py")}
    assert modules == set(schema.STAGES)
    for name, table in schema.metadata.tables.items():
        assert getattr(schema, name) is table


def test_every_sequence_is_defined_by_exactly_one_stage_module() -> None:
    definers: dict[str, list[str]] = {}
    for stage, module in schema.STAGES.items():
        for value in vars(module).values():
            if isinstance(value, sa.Sequence):
                definers.setdefault(value.name, []).append(stage)
    assert {name: stages for name, stages in definers.items() if len(stages) != 1} == {}
    assert sorted(definers) == sorted(schema.metadata._sequences)
