"""identity trust: identifiers held by claim only, and the claims of low-trust sources

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column(
        "identifiers",
        sa.Column(
            "claimed",
            sa.Boolean(),
            nullable=True,
            comment="true: held by a low-trust claim only; a vouched record naming it takes it over",
        ),
    )
    op.create_table(
        "identity_claims",
        sa.Column("node_id", sa.BigInteger(), nullable=False, comment="the claimant's node"),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False, comment="claimant now"),
        sa.Column("holder_id", sa.BigInteger(), nullable=False, comment="holder when claimed"),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("evidence", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="pending or confirmed"),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column(
            "merge_id", sa.BigInteger(), nullable=True, comment="the merge that confirmed it"
        ),
        sa.PrimaryKeyConstraint("node_id", "kind", "value", name=op.f("pk_identity_claims")),
        comment="Identifiers a low-trust source claimed for a person who does not hold them: "
        "never merged on their own; confirmed when trusted evidence puts both in one person.",
    )
    op.create_index(
        op.f("ix_identity_claims_person_id"), "identity_claims", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_identity_claims_person_id"), table_name="identity_claims")
    op.drop_table("identity_claims")
    op.drop_column("identifiers", "claimed")
