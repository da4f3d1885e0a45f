"""Updating many rows by primary key in one statement, on DuckDB and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection


def update_rows(conn: Connection, table: sa.Table, data: pa.Table) -> None:
    """``UPDATE table`` setting the columns of ``data`` other than the primary key, on the
    rows whose primary key ``data`` holds, in one statement (the caller's transaction).
    DuckDB reads ``data`` as a relation; PostgreSQL gets one array per column."""
    if data.num_rows == 0:
        return
    keys = [c.name for c in table.primary_key.columns]
    columns = [c for c in data.column_names if c not in keys]
    sets = ", ".join(f'"{c}" = b."{c}"' for c in columns)
    match = " AND ".join(f'"{table.name}"."{k}" = b."{k}"' for k in keys)
    if conn.dialect.name == "duckdb":
        raw: Any = conn.connection.driver_connection
        view = f"_update_{table.name}"
        raw.register(view, data)
        try:
            raw.execute(f'UPDATE "{table.name}" SET {sets} FROM {view} b WHERE {match}')
        finally:
            raw.unregister(view)
        return
    names = data.column_names
    types = {n: table.c[n].type.compile(dialect=conn.dialect) for n in names}
    unnest = ", ".join(f"CAST(:{n} AS {types[n]}[])" for n in names)
    alias = ", ".join(f'"{n}"' for n in names)
    source = f"unnest({unnest}) AS b({alias})"
    conn.execute(
        sa.text(f'UPDATE "{table.name}" SET {sets} FROM {source} WHERE {match}'),
        {n: data.column(n).to_pylist() for n in names},
    )


_ARROW = {
    sa.BigInteger: pa.int64(),
    sa.Integer: pa.int32(),
    sa.SmallInteger: pa.int16(),
    sa.DateTime: pa.timestamp("us"),
    sa.Boolean: pa.bool_(),
    sa.Float: pa.float64(),
}


def as_arrow(table: sa.Table, columns: dict[str, Any]) -> pa.Table:
    """``columns`` (lists, NumPy or Arrow arrays) as an Arrow table typed as ``table``'s
    columns (text for the types not listed in ``_ARROW``)."""
    arrays = {}
    for name, values in columns.items():
        kind = _ARROW.get(type(table.c[name].type), pa.string())
        if isinstance(values, pa.Array):
            arrays[name] = values if values.type == kind else values.cast(kind)
        elif isinstance(values, np.ndarray):
            arrays[name] = pa.array(values, kind)
        else:
            arrays[name] = pa.array(list(values), kind)
    return pa.table(arrays)
