"""The shape of the schema's metadata as plain data: every table, column, type, index,
constraint and sequence, as DDL on both backends would emit them and Alembic would compare
them."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex

from surmesure.store import schema

DIALECTS: dict[str, Dialect] = {"duckdb": DuckDBDialect(), "postgresql": postgresql.dialect()}


def _column(column: sa.Column[Any]) -> str:
    types = {column.type.compile(dialect=d) for d in DIALECTS.values()}
    default = column.default
    words = [
        column.name,
        "/".join(sorted(types)),
        "NULL" if column.nullable else "NOT NULL",
        "pk" if column.primary_key else "",
        f"autoincrement={column.autoincrement}" if column.autoincrement != "auto" else "",
        f"index={column.index}" if column.index is not None else "",
        f"unique={column.unique}" if column.unique is not None else "",
        f"default={getattr(default, 'arg', default)!r}" if default is not None else "",
        f"server_default={column.server_default!r}" if column.server_default is not None else "",
        f"comment={column.comment!r}" if column.comment else "",
    ]
    return " ".join(w for w in words if w)


def _constraint(constraint: sa.Constraint) -> str:
    columns = ",".join(c.name for c in getattr(constraint, "columns", ()))
    return f"{type(constraint).__name__} {constraint.name} ({columns})"


def _table(table: sa.Table) -> dict[str, Any]:
    return {
        "comment": table.comment,
        "info": {k: repr(v) for k, v in sorted(table.info.items())},
        "columns": [_column(c) for c in table.columns],
        "constraints": sorted(_constraint(c) for c in table.constraints),
        "indexes": sorted(
            {
                str(CreateIndex(i).compile(dialect=d)).strip()
                for i in table.indexes
                for d in DIALECTS.values()
            }
        ),
    }


def shape(metadata: sa.MetaData = schema.metadata) -> dict[str, Any]:
    """The metadata's shape; equal shapes create and compare as the same schema."""
    return {
        "naming_convention": {k: str(v) for k, v in sorted(metadata.naming_convention.items())},
        "sequences": sorted(metadata._sequences),
        "sorted_tables": [t.name for t in metadata.sorted_tables],
        "tables": {name: _table(t) for name, t in sorted(metadata.tables.items())},
    }


def dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":  # after a migration: record the new shape
    from pathlib import Path

    Path(__file__).with_name("schema_shape.json").write_text(dumps(shape()))
