"""preferences: topics, frequency and pause chosen in the preference centre

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-04 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preferences",
        sa.Column("preference_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False, comment="topic, frequency or pause"),
        sa.Column("name", sa.String(64), nullable=False, comment="the topic; empty for the others"),
        sa.Column("value", sa.String(32), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=True, comment="the end of a pause"),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("evidence", sa.String(512), nullable=True),
        sa.PrimaryKeyConstraint("preference_id", name=op.f("pk_preferences")),
        comment="Marketing preferences history (topics, frequency, pause): the latest row per "
        "(person, kind, name) is in force.",
    )
    op.create_index(op.f("ix_preferences_person_id"), "preferences", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_preferences_person_id"), table_name="preferences")
    op.drop_table("preferences")
