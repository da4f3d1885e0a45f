"""decide: the exposure ledger and the decisions with their explanation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 00:00:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "exposures",
        sa.Column("exposure_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("content_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("placement", sa.String(length=64), nullable=True),
        sa.Column("shown_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True, comment="the content's own expiry"),
        sa.PrimaryKeyConstraint("exposure_id", name=op.f("pk_exposures")),
        comment="Every content block shown to a person, on any channel: the exposure ledger.",
    )
    op.create_index(op.f("ix_exposures_person_id"), "exposures", ["person_id"], unique=False)
    op.create_index(op.f("ix_exposures_content_id"), "exposures", ["content_id"], unique=False)
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("placement", sa.String(length=64), nullable=False),
        sa.Column("context", _json(), nullable=True),
        sa.Column("result", _json(), nullable=True),
        sa.Column("explanation", _json(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_decisions")),
        comment="Every decision made (content, offers, products) with its context and explanation.",
    )
    op.create_index(op.f("ix_decisions_person_id"), "decisions", ["person_id"], unique=False)
    op.create_index(op.f("ix_decisions_decided_at"), "decisions", ["decided_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_decisions_decided_at"), table_name="decisions")
    op.drop_index(op.f("ix_decisions_person_id"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_index(op.f("ix_exposures_content_id"), table_name="exposures")
    op.drop_index(op.f("ix_exposures_person_id"), table_name="exposures")
    op.drop_table("exposures")
