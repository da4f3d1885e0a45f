"""message_files: the file each message was written into, for erasure

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-05 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_files",
        sa.Column("message_id", sa.String(64), nullable=False, comment="the outbox's message id"),
        sa.Column("path", sa.String(1024), nullable=False, comment="absolute path of the file"),
        sa.Column("channel", sa.String(16), nullable=False, comment="paper or phone"),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("written_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_files")),
        comment="The file each message was written into (a print batch, a call list), so that "
        "erasing the person rewrites the file without them.",
    )
    op.create_index(
        op.f("ix_message_files_person_id"), "message_files", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_message_files_person_id"), table_name="message_files")
    op.drop_table("message_files")
