"""quarantine sealed: each refused record's value and payload under a key of its own

Adds ``sealed`` and ``digest`` to ``quarantine``, lets ``payload`` be empty, and converts the
records already stored, in batches: value and payload sealed under the record's own key (node
``-quarantine_id``, :mod:`surmesure.protect.quarantined`), the payload's keyed hash kept for
dedupe, the plain columns cleared. The downgrade opens them back and destroys those keys.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 18:30:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from surmesure.collect.quarantine import payload_json
from surmesure.protect import quarantined

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BATCH = 5_000


def _update(conn: Connection, rows: pa.Table) -> None:
    """``UPDATE quarantine`` from ``rows`` (by ``quarantine_id``), one statement per batch."""
    columns = [c for c in rows.column_names if c != "quarantine_id"]
    sets = ", ".join(f'"{c}" = b."{c}"' for c in columns)
    match = "quarantine.quarantine_id = b.quarantine_id"
    if conn.dialect.name == "duckdb":
        raw: Any = conn.connection.driver_connection
        raw.register("_sealing", rows)
        try:
            raw.execute(f"UPDATE quarantine SET {sets} FROM _sealing b WHERE {match}")
        finally:
            raw.unregister("_sealing")
        return
    cast = {"quarantine_id": "bigint", "sealed": "bytea", "payload": "jsonb"}
    names = rows.column_names
    unnest = ", ".join(f"CAST(:{n} AS {cast.get(n, 'text')}[])" for n in names)
    alias = ", ".join(f'"{n}"' for n in names)
    conn.execute(
        sa.text(f"UPDATE quarantine SET {sets} FROM unnest({unnest}) AS b({alias}) WHERE {match}"),
        {n: rows.column(n).to_pylist() for n in names},
    )


def _payload_nullable(conn: Connection, nullable: bool) -> None:
    if conn.dialect.name != "duckdb":
        op.alter_column("quarantine", "payload", nullable=nullable)
        return
    # DuckDB alters no table an index depends on: its indexes are dropped and made again
    indexes = conn.execute(
        sa.text("SELECT index_name, sql FROM duckdb_indexes() WHERE table_name = 'quarantine'")
    ).all()
    for name, _ in indexes:
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    conn.execute(sa.text("ALTER TABLE quarantine ALTER COLUMN payload DROP NOT NULL"))
    for _, sql in indexes:
        conn.execute(sa.text(sql))


def upgrade() -> None:
    op.add_column(
        "quarantine",
        sa.Column(
            "sealed",
            sa.LargeBinary(),
            nullable=True,
            comment="value and payload, sealed, a key per row",
        ),
    )
    op.add_column(
        "quarantine",
        sa.Column(
            "digest",
            sa.String(64),
            nullable=True,
            comment="keyed hash of the payload, for dedupe",
        ),
    )
    conn = op.get_bind()
    _payload_nullable(conn, True)
    now = datetime.now(UTC).replace(tzinfo=None)
    query = sa.text(
        "SELECT quarantine_id, value, CAST(payload AS TEXT) AS payload FROM quarantine "
        f"WHERE sealed IS NULL AND payload IS NOT NULL ORDER BY quarantine_id LIMIT {BATCH}"
    )
    while True:
        rows = conn.execute(query).all()
        if not rows:
            break
        ids = [int(r.quarantine_id) for r in rows]
        texts = [payload_json(orjson.loads(r.payload)) for r in rows]
        sealed = quarantined.seal(conn, ids, [r.value for r in rows], texts, now=now)
        data = {
            "quarantine_id": pa.array(ids, pa.int64()),
            "sealed": pa.array(sealed, pa.binary()),
            "digest": pa.array([quarantined.digest(t) for t in texts], pa.string()),
            "value": pa.array([None] * len(ids), pa.string()),
            "payload": pa.array([None] * len(ids), pa.string()),
        }
        _update(conn, pa.table(data))


def downgrade() -> None:
    conn = op.get_bind()
    query = sa.text(
        "SELECT quarantine_id, sealed FROM quarantine "
        f"WHERE sealed IS NOT NULL ORDER BY quarantine_id LIMIT {BATCH}"
    )
    while True:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        if not rows:
            break
        quarantined.open_records(conn, rows)
        data = {
            "quarantine_id": pa.array([int(r["quarantine_id"]) for r in rows], pa.int64()),
            "sealed": pa.array([None] * len(rows), pa.binary()),
            "value": pa.array([r.get("value") for r in rows], pa.string()),
            # a record whose key is gone comes back as an empty payload
            "payload": pa.array(
                [orjson.dumps(r.get("payload") or {}).decode() for r in rows], pa.string()
            ),
        }
        _update(conn, pa.table(data))
    ids = [int(i) for i in conn.execute(sa.text("SELECT quarantine_id FROM quarantine")).scalars()]
    quarantined.destroy(conn, ids)
    if conn.dialect.name != "duckdb":
        # DuckDB adds no constraint to a table updated in the same transaction: there,
        # ``payload`` stays nullable (every writer before 0017 fills it)
        _payload_nullable(conn, False)
    indexes = (
        conn.execute(
            sa.text("SELECT index_name, sql FROM duckdb_indexes() WHERE table_name = 'quarantine'")
        ).all()
        if conn.dialect.name == "duckdb"
        else []
    )
    for name, _ in indexes:
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    op.drop_column("quarantine", "digest")
    op.drop_column("quarantine", "sealed")
    for _, sql in indexes:
        conn.execute(sa.text(sql))
