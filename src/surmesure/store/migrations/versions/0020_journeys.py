"""journeys, journey_versions, journey_people, journey_log: durable journeys

Revision ID: 0020
Revises: 0021
Create Date: 2026-12-04 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from surmesure.store.meta import Json

revision = "0020"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, comment="the version new people enter"),
        sa.Column("status", sa.String(16), nullable=False, comment="active, paused or archived"),
        sa.Column(
            "entries_read_at",
            sa.DateTime(),
            nullable=True,
            comment="segment changes and schedules are read up to here",
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_journeys")),
        comment="Journeys by name, the version in force and whether people move through it.",
    )
    op.create_table(
        "journey_versions",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", Json, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_journey_versions")),
        comment="Every published document of every journey; people stay on the version they "
        "entered.",
    )
    op.create_table(
        "journey_people",
        sa.Column("journey", sa.String(64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("entry", sa.Integer(), nullable=False, comment="1 for the first time in, ..."),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("status", sa.String(8), nullable=False, comment="running or done"),
        sa.Column("due_at", sa.DateTime(), nullable=True, comment="when the step's pause ends"),
        sa.Column(
            "product",
            sa.String(64),
            nullable=True,
            comment="the product the entry was about",
        ),
        sa.Column("held", sa.Boolean(), nullable=False, comment="on a split's control path"),
        sa.Column("reason", sa.String(64), nullable=True, comment="why it ended"),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("journey", "person_id", "entry", name=op.f("pk_journey_people")),
        comment="Where each person is in each journey (one row per entry), with the time the "
        "step's pause ends.",
    )
    op.create_index(op.f("ix_journey_people_status_due_at"), "journey_people", ["status", "due_at"])
    op.create_index(op.f("ix_journey_people_person_id"), "journey_people", ["person_id"])
    op.create_table(
        "journey_log",
        sa.Column("journey", sa.String(64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("what", sa.String(80), nullable=False, comment="why the person moved, or ended"),
        sa.Column("logged_at", sa.DateTime(), nullable=False),
        comment="Each step each person went through, and each end, with its reason: the funnel.",
    )
    op.create_index(
        op.f("ix_journey_log_journey_person_id"), "journey_log", ["journey", "person_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_journey_log_journey_person_id"), table_name="journey_log")
    op.drop_table("journey_log")
    op.drop_index(op.f("ix_journey_people_person_id"), table_name="journey_people")
    op.drop_index(op.f("ix_journey_people_status_due_at"), table_name="journey_people")
    op.drop_table("journey_people")
    op.drop_table("journey_versions")
    op.drop_table("journeys")
