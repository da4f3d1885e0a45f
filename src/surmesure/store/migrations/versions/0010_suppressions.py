"""suppression list: keyed hashes of erased identifiers; per-node data keys

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column(
            "identifier_hash",
            sa.String(64),
            nullable=False,
            comment="hex HMAC-SHA256 of 'kind:value' (normalized) under the suppression key",
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column(
            "lifted_at", sa.DateTime(), nullable=True, comment="a later consent re-admitted it"
        ),
        sa.PrimaryKeyConstraint("identifier_hash", name="pk_suppressions"),
        comment="Identifiers of erased people, as keyed hashes: records carrying one are refused "
        "(reason erased) until a consent granted after the erasure re-admits that identifier.",
    )
    op.create_table(
        "suppression_state",
        sa.Column("id", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_suppression_state"),
        comment="One row: a token every change of the suppression list renews, so that a "
        "process keeps the list in memory and reloads it only when it changed.",
    )

    op.create_table(
        "person_keys",
        sa.Column("node_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column(
            "wrapped",
            sa.LargeBinary(),
            nullable=False,
            comment="nonce || AES-GCM(wrapping key, key)",
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_person_keys"),
        comment="The data key of each identity node, wrapped; erasure deletes it "
        "(crypto-shredding).",
    )


def downgrade() -> None:
    op.drop_table("person_keys")
    op.drop_table("suppression_state")
    op.drop_table("suppressions")
