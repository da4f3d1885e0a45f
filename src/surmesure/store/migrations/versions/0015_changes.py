"""changes: the outbox collect writes in its transaction; cursors and failures per subscriber

Revision ID: 0015
Revises: 0018
Create Date: 2026-12-04 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("change_id_seq")))
    op.create_table(
        "changes",
        sa.Column("change_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, comment="event, order, consent, erasure"),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.String(64), nullable=True, comment="an event's type, a consent's"),
        sa.Column("ref", sa.String(256), nullable=True, comment="the messageId or order id"),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_changes")),
        comment="The outbox: each change collect stored, written in the same transaction, in order.",
    )
    op.create_table(
        "change_cursors",
        sa.Column("subscriber", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False, comment="last change_id delivered"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", name=op.f("pk_change_cursors")),
        comment="How far each subscriber of the outbox has been delivered.",
    )
    op.create_table(
        "change_failures",
        sa.Column("subscriber", sa.String(64), nullable=False),
        sa.Column("change_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(512), nullable=False, comment="the last error, one line"),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.Column("retry_at", sa.DateTime(), nullable=True, comment="empty once given up"),
        sa.PrimaryKeyConstraint("subscriber", "change_id", name=op.f("pk_change_failures")),
        comment="Changes a subscriber failed on: retried with a growing delay, then given up.",
    )


def downgrade() -> None:
    op.drop_table("change_failures")
    op.drop_table("change_cursors")
    op.drop_table("changes")
    op.execute(sa.schema.DropSequence(sa.Sequence("change_id_seq")))
