"""segments: versioned definitions, memberships and their changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, comment="current version"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_segments")),
        comment="Segments by name, with the version in force.",
    )
    op.create_table(
        "segment_versions",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_segment_versions")),
        comment="Every saved definition of every segment; a changed definition adds a version.",
    )
    op.create_table(
        "segment_members",
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("segment", "person_id", name=op.f("pk_segment_members")),
        comment="Who is in each segment since its last refresh (or real-time update).",
    )
    op.create_table(
        "segment_changes",
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False, comment="entered or exited"),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        comment="Who entered and who left each segment, and when.",
    )
    op.create_index(
        op.f("ix_segment_changes_segment"), "segment_changes", ["segment"], unique=False
    )
    op.create_index(
        op.f("ix_segment_changes_person_id"), "segment_changes", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_segment_changes_person_id"), table_name="segment_changes")
    op.drop_index(op.f("ix_segment_changes_segment"), table_name="segment_changes")
    op.drop_table("segment_changes")
    op.drop_table("segment_members")
    op.drop_table("segment_versions")
    op.drop_table("segments")
