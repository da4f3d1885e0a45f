"""delivery_reports: what providers reported of each message after it left

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-04 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_reports",
        sa.Column("report_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False, comment="the outbox's message id"),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column(
            "status",
            sa.String(16),
            nullable=False,
            comment="delivered, failed, buffered, accepted or rejected",
        ),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_delivery_reports")),
        comment="What providers reported of each message after it left (an SMS delivery "
        "report), oldest first; no text of the provider's answer, which may quote the message.",
    )
    op.create_index(
        op.f("ix_delivery_reports_message_id_received_at"),
        "delivery_reports",
        ["message_id", "received_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_reports_message_id_received_at"), table_name="delivery_reports")
    op.drop_table("delivery_reports")
