"""quarantine marks: which quarantined records hold a value, as keyed hashes

Adds ``quarantine_marks`` (mark, quarantine_id) and marks the records already stored, opened in
batches (:func:`surmesure.protect.quarantined.mark`): an erasure then opens only the records
marked with one of the person's identifiers instead of every record.

Revision ID: 0025
Revises: 0015
Create Date: 2026-12-04 21:45:00.000000
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from surmesure.collect.quarantine import payload_json
from surmesure.protect import quarantined
from surmesure.store import schema

revision = "0025"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine_marks",
        sa.Column("mark", sa.String(16), nullable=False, comment="keyed hash of a value, cut"),
        sa.Column("quarantine_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("mark", "quarantine_id"),
        comment="Which quarantined records hold a value: keyed hashes, never a value.",
    )
    op.create_index("ix_quarantine_marks_quarantine_id", "quarantine_marks", ["quarantine_id"])
    conn = op.get_bind()
    q = schema.quarantine
    for batch in quarantined.batches(conn, columns=[q.c.quarantine_id]):
        held = [r for r in batch if r.get("payload") is not None]
        if held:
            texts = [payload_json(_decoded(r["payload"])) for r in held]
            quarantined.mark(conn, [int(r["quarantine_id"]) for r in held], texts)


def _decoded(payload: object) -> dict[str, object]:
    if isinstance(payload, str | bytes):
        found = orjson.loads(payload)
        return found if isinstance(found, dict) else {"payload": found}
    return payload if isinstance(payload, dict) else {"payload": payload}


def downgrade() -> None:
    op.drop_index("ix_quarantine_marks_quarantine_id", table_name="quarantine_marks")
    op.drop_table("quarantine_marks")
