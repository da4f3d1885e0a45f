"""protect: scoped API keys and the audit log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column(
            "key_id", sa.String(length=32), nullable=False, comment="public id, shown in lists"
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False, comment="SHA-256, hex"),
        sa.Column(
            "scopes", sa.String(length=128), nullable=False, comment="comma list: collect,decide..."
        ),
        sa.Column(
            "source", sa.String(length=64), nullable=False, comment="source of what it collects"
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
        comment="API keys: named, scoped, stored as hashes, revocable.",
    )
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column(
            "actor", sa.String(length=160), nullable=False, comment="key:<name> or cli:<user>"
        ),
        sa.Column(
            "action", sa.String(length=64), nullable=False, comment="e.g. person.show, key.revoke"
        ),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "detail", _json(), nullable=True, comment="what was asked; never identifier values"
        ),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_audit_log")),
        comment="Every read of personal data and every administrative change: who, what, when. "
        "Kept after an erasure, detached from the person.",
    )
    op.create_index(op.f("ix_audit_log_occurred_at"), "audit_log", ["occurred_at"], unique=False)
    op.create_index(op.f("ix_audit_log_person_id"), "audit_log", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_person_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_occurred_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
