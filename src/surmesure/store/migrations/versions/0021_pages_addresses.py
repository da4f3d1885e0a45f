"""page_views and address_flags: the web channel's pages, and addresses that cannot be reached

Revision ID: 0021
Revises: 0025
Create Date: 2026-12-04 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_views",
        sa.Column(
            "page_id", sa.String(64), nullable=False, comment="SHA-256 of the page link's token"
        ),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "campaign", sa.String(64), nullable=True, comment="the campaign whose link it is"
        ),
        sa.Column("decision_id", sa.String(64), nullable=False, comment="what the page shows"),
        sa.Column("first_viewed_at", sa.DateTime(), nullable=False),
        sa.Column("last_viewed_at", sa.DateTime(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("page_id", name=op.f("pk_page_views")),
        comment="Each personal page opened, with the decision it shows: a page shows the same "
        "content and offers every time its link is opened.",
    )
    op.create_index(op.f("ix_page_views_person_id"), "page_views", ["person_id"], unique=False)
    op.create_table(
        "address_flags",
        sa.Column("kind", sa.String(16), nullable=False, comment="email or postal"),
        sa.Column(
            "address",
            sa.String(64),
            nullable=False,
            comment="blind index of the address (an e-mail's is its identifiers.value)",
        ),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, comment="bounced or undeliverable"),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "address", name=op.f("pk_address_flags")),
        comment="Addresses that cannot be reached: a hard bounce of an e-mail address, a letter "
        "returned undeliverable. Only that address is skipped, not the person's other ones.",
    )
    op.create_index(
        op.f("ix_address_flags_person_id"), "address_flags", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_address_flags_person_id"), table_name="address_flags")
    op.drop_table("address_flags")
    op.drop_index(op.f("ix_page_views_person_id"), table_name="page_views")
    op.drop_table("page_views")
