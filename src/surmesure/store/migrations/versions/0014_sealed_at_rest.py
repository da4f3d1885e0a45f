"""sealed at rest: direct-identifier traits, event contexts and identify traits, decisions

Adds ``sealed`` to ``traits``, ``events`` and ``decisions`` and converts the rows already
stored: each value :mod:`surmesure.protect.atrest` seals is sealed under its node with the
key of ``Settings.encryption_key`` and its plain columns cleared, in batches. The downgrade
opens them back (a value whose key was destroyed stays NULL).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from surmesure.protect import atrest
from surmesure.store.migrate import migrating_store

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 10_000
TABLES = {
    # table: (key columns, node column, sealed columns)
    "traits": (("record_key", "name"), "node_id", ("value",)),
    "events": (("message_id",), "node_id", ("context", "properties")),
    "decisions": (("decision_id",), "person_id", ("context", "result", "explanation")),
}


def _to_seal(conn: Connection, table: str) -> str:
    """The rows of ``table`` holding plain values that are sealed from now on (the sealed
    traits of the migrated store's settings)."""
    if table == "traits":
        sealed_traits = migrating_store(conn).settings.sealed_traits
        names = ", ".join("'" + n.replace("'", "''") + "'" for n in sealed_traits)
        chosen = f"name IN ({names})" if names else "FALSE"
        return f"node_id IS NOT NULL AND value IS NOT NULL AND {chosen}"
    if table == "events":
        return (
            "node_id IS NOT NULL AND (context IS NOT NULL "
            "OR (type = 'identify' AND properties IS NOT NULL))"
        )
    return (
        "person_id IS NOT NULL "
        "AND (context IS NOT NULL OR result IS NOT NULL OR explanation IS NOT NULL)"
    )


def _text(value: Any) -> str | None:
    """A JSON column read as text, as JSON text."""
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _update(conn: Connection, table: str, columns: Sequence[str], rows: pa.Table) -> None:
    """``UPDATE table SET columns = rows' columns`` for the rows whose keys match, one
    statement per batch."""
    keys = TABLES[table][0]
    sets = ", ".join(f'"{c}" = b."{c}"' for c in columns)
    match = " AND ".join(f'"{table}"."{k}" = b."{k}"' for k in keys)
    if conn.dialect.name == "duckdb":
        raw: Any = conn.connection.driver_connection
        raw.register("_sealing", rows)
        try:
            raw.execute(f'UPDATE "{table}" SET {sets} FROM _sealing b WHERE {match}')
        finally:
            raw.unregister("_sealing")
        return
    cast = {"sealed": "bytea", "value": "jsonb", "context": "jsonb", "properties": "jsonb"}
    cast |= {"result": "jsonb", "explanation": "jsonb"}
    names = [*keys, *columns]
    unnest = ", ".join(f"CAST(:{n} AS {cast.get(n, 'text')}[])" for n in names)
    alias = ", ".join(f'"{n}"' for n in names)
    params = {n: rows.column(n).to_pylist() for n in names}
    conn.execute(
        sa.text(f'UPDATE "{table}" SET {sets} FROM unnest({unnest}) AS b({alias}) WHERE {match}'),
        params,
    )


def _seal(conn: Connection, table: str) -> None:
    keys, node, columns = TABLES[table]
    now = datetime.now(UTC).replace(tzinfo=None)
    texts = ", ".join(f'CAST("{c}" AS TEXT) AS "{c}"' for c in columns)
    listed = ", ".join(f'"{k}"' for k in keys)
    chosen = _to_seal(conn, table)
    query = f'SELECT {listed}, "{node}", {texts} FROM "{table}" WHERE {chosen} LIMIT {BATCH}'
    if table == "events":
        query = query.replace(f'"{node}", ', f'"{node}", type, ', 1)
    while True:
        rows = [r._mapping for r in conn.execute(sa.text(query))]
        if not rows:
            return
        if len(columns) == 1:
            hidden = [_text(r[columns[0]]) for r in rows]
        elif table == "events":
            hidden = [
                atrest.joined(
                    {
                        "context": _text(r["context"]),
                        "properties": _text(r["properties"]) if r["type"] == "identify" else None,
                    }
                )
                for r in rows
            ]
        else:
            hidden = [atrest.joined({c: _text(r[c]) for c in columns}) for r in rows]
        sealed = atrest.seal_texts(conn, [r[node] for r in rows], hidden, now=now)
        data: dict[str, pa.Array] = {k: pa.array([r[k] for r in rows], pa.string()) for k in keys}
        data["sealed"] = pa.array(sealed, pa.binary())
        cleared = list(columns)
        if table == "events":  # a track's properties stay plain
            data["context"] = pa.array([None] * len(rows), pa.string())
            data["properties"] = pa.array(
                [None if r["type"] == "identify" else _text(r["properties"]) for r in rows],
                pa.string(),
            )
        else:
            data |= {c: pa.array([None] * len(rows), pa.string()) for c in columns}
        _update(conn, table, ["sealed", *cleared], pa.table(data))


def _open(conn: Connection, table: str) -> None:
    keys, node, columns = TABLES[table]
    listed = ", ".join(f'"{k}"' for k in keys)
    plain = ", ".join(f'CAST("{c}" AS TEXT) AS "{c}"' for c in columns)
    query = (
        f'SELECT {listed}, "{node}", sealed, {plain} FROM "{table}" '
        f"WHERE sealed IS NOT NULL LIMIT {BATCH}"
    )
    while True:
        rows = [r._mapping for r in conn.execute(sa.text(query))]
        if not rows:
            return
        opened = atrest.open_json(conn, [r[node] for r in rows], [bytes(r["sealed"]) for r in rows])
        data: dict[str, pa.Array] = {k: pa.array([r[k] for r in rows], pa.string()) for k in keys}
        data["sealed"] = pa.array([None] * len(rows), pa.binary())
        for c in columns:
            values = []
            for r, value in zip(rows, opened, strict=True):
                got = value if len(columns) == 1 else (value or {}).get(c)
                values.append(_text(r[c]) if got is None else orjson.dumps(got).decode())
            data[c] = pa.array(values, pa.string())
        _update(conn, table, ["sealed", *columns], pa.table(data))


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table, sa.Column("sealed", sa.LargeBinary(), nullable=True, comment=_COMMENTS[table])
        )
    conn = op.get_bind()
    for table in TABLES:
        _seal(conn, table)


def downgrade() -> None:
    conn = op.get_bind()
    for table in TABLES:
        _open(conn, table)
    for table in TABLES:
        # DuckDB alters no table an index depends on: its indexes are dropped and made again
        indexes = (
            conn.execute(
                sa.text("SELECT index_name, sql FROM duckdb_indexes() WHERE table_name = :t"),
                {"t": table},
            ).all()
            if conn.dialect.name == "duckdb"
            else []
        )
        for name, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
        op.drop_column(table, "sealed")
        for _, sql in indexes:
            conn.execute(sa.text(sql))


_COMMENTS = {
    "traits": "the value of a sealed trait, sealed",
    "events": "the context and an identify's traits, sealed",
    "decisions": "context, result and explanation of a person's decision, sealed",
}
