"""identifiers at rest: blind indexes in place of values, values sealed per node

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 16:00:00.000000

``identifiers`` and ``identity_claims`` get a ``sealed`` column; every stored identifier value
(``identifiers.value``, ``identity_claims.value``, ``events.user_id`` and ``anonymous_id``,
``orders.customer_ref``, ``derived_metrics.customer_id``, the identifiers named in
``merges.evidence``) becomes its blind index, and the values are sealed under each row's node (a claim's: its holder's)
(:mod:`surmesure.protect.blind`), in batches, with the key of the
``encryption_key`` of the migrated store's settings. A downgrade drops the ``sealed`` columns; the indexes stay, as nothing
stored can give the values back without the keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from surmesure.store.engine import Store

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BATCH = 5_000
COLUMNS = {
    "identifiers": (
        "kind", "value", "person_id", "node_id", "source", "first_seen_at", "claimed", "sealed"
    ),
    "identity_claims": (
        "node_id", "kind", "value", "person_id", "holder_id", "source", "claimed_at", "evidence",
        "status", "confirmed_at", "merge_id", "sealed",
    ),
}  # fmt: skip
COLUMN_TYPES: dict[str, Any] = {
    "evidence": sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
    "sealed": sa.LargeBinary(),
}


def upgrade() -> None:
    from surmesure.protect import blind
    from surmesure.store.migrate import migrating_store

    op.add_column(
        "identifiers",
        sa.Column(
            "sealed", sa.LargeBinary(), nullable=True, comment="the value, sealed under node_id"
        ),
    )
    op.add_column(
        "identity_claims",
        sa.Column(
            "sealed", sa.LargeBinary(), nullable=True, comment="the value, sealed under holder_id"
        ),
    )
    conn = op.get_bind()
    store = migrating_store(conn)
    keyring = blind.ring(store)
    now = datetime.now(UTC).replace(tzinfo=None)
    for table, key, under in (
        ("identifiers", ("kind", "value"), "node_id"),
        ("identity_claims", ("node_id", "kind", "value"), "holder_id"),
    ):
        _seal_rows(conn, keyring, table, key, under, now)
    for table, column, kind in (
        ("events", "user_id", blind.USER_ID_KIND),
        ("events", "anonymous_id", blind.ANONYMOUS_ID_KIND),
        ("orders", "customer_ref", blind.USER_ID_KIND),
        ("derived_metrics", "customer_id", blind.USER_ID_KIND),
    ):
        _index_column(conn, store, table, column, kind)
    _index_evidence(conn, store)


def _seal_rows(
    conn: Connection, keyring: Any, table: str, key: tuple[str, ...], under: str, now: datetime
) -> None:
    """Rows not sealed yet, a batch at a time: deleted and written again, value indexed and
    sealed under the node column ``under`` names."""
    t = sa.table(table, *(sa.column(c, COLUMN_TYPES.get(c)) for c in COLUMNS[table]))
    while True:
        rows = [
            dict(r._mapping)
            for r in conn.execute(sa.select(t).where(t.c.sealed.is_(None)).limit(BATCH))
        ]
        if not rows:
            return
        conn.execute(
            t.delete().where(
                sa.tuple_(*(t.c[k] for k in key)).in_([tuple(r[k] for k in key) for r in rows])
            )
        )
        sealed = keyring.seal_many(
            conn, [int(r[under]) for r in rows], [str(r["value"]) for r in rows], now=now
        )
        for row, blob in zip(rows, sealed, strict=True):
            row["value"] = keyring.index(str(row["kind"]), str(row["value"]))
            row["sealed"] = blob
        conn.execute(sa.insert(t), rows)


def _index_column(conn: Connection, store: Store, table: str, column: str, kind: str) -> None:
    """Each distinct value of ``table.column`` replaced by its index, a batch at a time."""
    from surmesure.protect import blind

    values = [
        str(v)
        for (v,) in conn.execute(
            sa.text(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')
        )
    ]
    for start in range(0, len(values), BATCH):
        old = values[start : start + BATCH]
        new = [blind.index(store, kind, v.strip()) for v in old]
        if store.is_duckdb:
            raw: Any = conn.connection.driver_connection
            raw.register("_indexed", pa.table({"old": old, "new": new}))
            try:
                raw.execute(
                    f'UPDATE "{table}" SET "{column}" = m.new FROM _indexed m WHERE "{table}"."{column}" = m.old'
                )
            finally:
                raw.unregister("_indexed")
        else:
            conn.execute(
                sa.text(
                    f'UPDATE "{table}" SET "{column}" = m.new '
                    "FROM unnest(CAST(:old AS text[]), CAST(:new AS text[])) AS m(old, new) "
                    f'WHERE "{table}"."{column}" = m.old'
                ),
                {"old": old, "new": new},
            )


def _index_evidence(conn: Connection, store: Store) -> None:
    """Identifier values named in merge evidence replaced by their kind and index."""
    from surmesure.protect import blind

    m = sa.table("merges", sa.column("merge_id"), sa.column("evidence"))
    rows = conn.execute(sa.select(m.c.merge_id, m.c.evidence)).fetchall()
    changed = []
    for merge_id, evidence in rows:
        data = orjson.loads(evidence) if isinstance(evidence, str | bytes) else dict(evidence or {})
        data = blind.indexed_evidence(store, data)
        changed.append({"i": merge_id, "e": orjson.dumps(data).decode()})
    if changed:
        conn.execute(
            sa.text(
                "UPDATE merges SET evidence = CAST(:e AS "
                + ("JSON" if conn.dialect.name == "duckdb" else "JSONB")
                + ") WHERE merge_id = :i"
            ),
            changed,
        )


def downgrade() -> None:
    # DuckDB alters no table an index depends on: the person indexes go and come back
    for table in ("identity_claims", "identifiers"):
        op.drop_index(op.f(f"ix_{table}_person_id"), table_name=table)
        op.drop_column(table, "sealed")
        op.create_index(op.f(f"ix_{table}_person_id"), table, ["person_id"], unique=False)
