"""campaigns, campaign_versions, messages: campaign documents and the outbox

Revision ID: 0018
Revises: 0019
Create Date: 2026-12-04 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, comment="current version"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_campaigns")),
        comment="Campaigns by name, with the version in force.",
    )
    op.create_table(
        "campaign_versions",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_campaign_versions")),
        comment="Every saved document of every campaign; a changed document adds a version.",
    )
    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column(
            "status",
            sa.String(16),
            nullable=False,
            comment="planned, sending, sent, failed, suppressed or held_out",
        ),
        sa.Column(
            "reason", sa.String(200), nullable=True, comment="why suppressed, held out, failed"
        ),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("provider_id", sa.String(256), nullable=True),
        sa.Column("units", sa.SmallInteger(), nullable=True, comment="what the provider bills"),
        sa.Column("planned_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "campaign",
            "person_id",
            "channel",
            "step",
            name=op.f("uq_messages_campaign_person_id_channel_step"),
        ),
        comment="The outbox: one row per campaign, person, channel and step, recorded before "
        "the message leaves; an erased person's rows stay for the counts, detached.",
    )
    op.create_index(
        op.f("ix_messages_campaign_status"), "messages", ["campaign", "status"], unique=False
    )
    op.create_index(
        op.f("ix_messages_person_id_sent_at"), "messages", ["person_id", "sent_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_person_id_sent_at"), table_name="messages")
    op.drop_index(op.f("ix_messages_campaign_status"), table_name="messages")
    op.drop_table("messages")
    op.drop_table("campaign_versions")
    op.drop_table("campaigns")
