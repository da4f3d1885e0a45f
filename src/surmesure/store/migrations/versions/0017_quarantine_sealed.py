"""quarantine sealed: each refused record's value and payload under a key of its own

Adds ``sealed`` and ``digest`` to ``quarantine``, lets ``payload`` be empty, and converts the
records already stored, in batches: value and payload sealed under the record's own key (node
``-quarantine_id``, :mod:`surmesure.protect.quarantined`), the payload's keyed hash kept for
dedupe, the plain columns cleared. The downgrade opens them back and destroys those keys.

An alias event's ``properties.previous_id`` (a device id) becomes its blind index, as
collection now stores it; the downgrade leaves it so (an index does not open).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 18:30:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pyarrow as pa
import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from surmesure.collect.quarantine import payload_json
from surmesure.protect import blind, quarantined
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.migrate import migrating_store
from surmesure.store.update import update_rows

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BATCH = 5_000


def _index_previous_ids(conn: Connection, store: Store) -> None:
    """An alias event's ``properties.previous_id`` as its blind index (kind ``anonymous_id``),
    as collection stores it from now on (:mod:`surmesure.protect.blind`)."""
    last = ""
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT message_id, CAST(properties AS TEXT) AS properties FROM events "
                "WHERE type = 'alias' AND properties IS NOT NULL AND message_id > :last "
                f"ORDER BY message_id LIMIT {BATCH}"
            ),
            {"last": last},
        ).all()
        if not rows:
            return
        last = str(rows[-1].message_id)
        changed = []
        for row in rows:
            properties = orjson.loads(row.properties)
            previous = properties.get("previous_id") if isinstance(properties, dict) else None
            if previous is not None:
                indexed = blind.index(store, blind.ANONYMOUS_ID_KIND, str(previous).strip())
                changed.append((row.message_id, {**properties, "previous_id": indexed}))
        if changed:
            data = {
                "message_id": pa.array([m for m, _ in changed], pa.string()),
                "properties": pa.array([orjson.dumps(p).decode() for _, p in changed]),
            }
            update_rows(conn, schema.events, pa.table(data))


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
    store = migrating_store(conn)
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
            "digest": pa.array([quarantined.digest(store, t) for t in texts], pa.string()),
            "value": pa.array([None] * len(ids), pa.string()),
            "payload": pa.array([None] * len(ids), pa.string()),
        }
        update_rows(conn, schema.quarantine, pa.table(data))
    _index_previous_ids(conn, store)


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
        update_rows(conn, schema.quarantine, pa.table(data))
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
