"""The schema's metadata is what the migrations build: Alembic's comparison on PostgreSQL, and
DuckDB's own catalogue (which Alembic cannot reflect) on DuckDB."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from duckdb_engine import Dialect as DuckDBDialect

from conftest import fresh_postgres
from surmesure.store import Store, open_store, schema

# comments the migrations never wrote: a migration that writes them empties this list
KNOWN_DRIFT: list[tuple[str, str, str | None]] = []

DUCKDB_TYPES = {
    "BYTEA": "BLOB",
    "FLOAT": "DOUBLE",
    "TEXT": "VARCHAR",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
}


def _change(diff: Any) -> tuple[str, str, str | None]:
    if isinstance(diff, list):  # a column's changes come as a list of one
        (kind, _, table, column, *_) = diff[0]
        return (kind, table, column)
    kind, table = diff[0], diff[1]
    return (kind, table.name, None)


@pytest.mark.postgres
def test_alembic_finds_nothing_to_change_on_postgresql() -> None:
    """On a database of its own, migrated from nothing: the session's shared one also holds
    the tables other tests make for their own checks."""
    with fresh_postgres("surmesure_schema") as url:
        store = open_store(url)
        try:
            with store.engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                diff = compare_metadata(context, schema.metadata)
        finally:
            store.dispose()
    assert sorted(_change(d) for d in diff) == KNOWN_DRIFT


def _duckdb_type(column: sa.Column[Any]) -> str:
    compiled = column.type.compile(dialect=DuckDBDialect())
    base = re.sub(r"\(.*\)$", "", compiled)
    return DUCKDB_TYPES.get(base, base)


def _keys(table: sa.Table) -> set[tuple[str, str, tuple[str, ...]]]:
    """The primary key and unique constraints DuckDB's catalogue lists for ``table``."""
    keys = {(table.name, "UNIQUE", (c.name,)) for c in table.columns if c.unique}
    for constraint in table.constraints:
        names = tuple(c.name for c in getattr(constraint, "columns", ()))
        if isinstance(constraint, sa.PrimaryKeyConstraint) and names:
            keys.add((table.name, "PRIMARY KEY", names))
        elif isinstance(constraint, sa.UniqueConstraint):
            keys.add((table.name, "UNIQUE", names))
    return keys


def test_duckdb_has_the_metadatas_tables_columns_types_keys_and_indexes(
    duckdb_store: Store,
) -> None:
    metadata = schema.metadata
    expected_columns = {
        (t.name, c.name, _duckdb_type(c), c.nullable)
        for t in metadata.tables.values()
        for c in t.columns
    }
    expected_keys = {key for t in metadata.tables.values() for key in _keys(t)}
    expected_indexes = {
        (i.name, t.name, tuple(c.name for c in i.columns), bool(i.unique))
        for t in metadata.tables.values()
        for i in t.indexes
        if i.info.get("only_on", "duckdb") == "duckdb"
    }
    with duckdb_store.connect() as conn:
        columns = {
            (table, column, kind, nullable == "YES")
            for table, column, kind, nullable in conn.execute(
                sa.text(
                    "SELECT table_name, column_name, data_type, is_nullable "
                    "FROM information_schema.columns WHERE table_name != 'alembic_version'"
                )
            )
        }
        keys = {
            (table, kind, tuple(names))
            for table, kind, names in conn.execute(
                sa.text(
                    "SELECT table_name, constraint_type, constraint_column_names "
                    "FROM duckdb_constraints() WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE') "
                    "AND table_name != 'alembic_version'"
                )
            )
        }
        indexes = {
            (name, table, tuple(re.findall(r"\w+", expressions)), unique)
            for name, table, expressions, unique in conn.execute(
                sa.text(
                    "SELECT index_name, table_name, expressions, is_unique FROM duckdb_indexes()"
                )
            )
        }
        sequences = {
            name
            for (name,) in conn.execute(sa.text("SELECT sequence_name FROM duckdb_sequences()"))
        }
    assert columns ^ expected_columns == set()
    assert keys ^ expected_keys == set()
    assert indexes ^ expected_indexes == set()
    assert sequences == set(metadata._sequences)
