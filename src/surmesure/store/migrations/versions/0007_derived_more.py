"""derived metrics: channel appetence, preferred store and affinities

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def columns() -> list[sa.Column[object]]:
    return [
        sa.Column("appetence_email", sa.Float(precision=53), nullable=True),
        sa.Column("appetence_sms", sa.Float(precision=53), nullable=True),
        sa.Column("appetence_phone", sa.Float(precision=53), nullable=True),
        sa.Column("appetence_paper", sa.Float(precision=53), nullable=True),
        sa.Column("appetence_web", sa.Float(precision=53), nullable=True),
        sa.Column("best_channel", sa.String(length=16), nullable=True),
        sa.Column("preferred_store_id", sa.String(length=64), nullable=True),
        sa.Column(
            "preferred_store_basis",
            sa.String(length=16),
            nullable=True,
            comment="orders, home_store",
        ),
        sa.Column("preferred_store_km", sa.Float(precision=53), nullable=True),
        sa.Column("top_category_1", sa.String(length=128), nullable=True),
        sa.Column("top_category_2", sa.String(length=128), nullable=True),
        sa.Column("top_category_3", sa.String(length=128), nullable=True),
        sa.Column("top_category_share", sa.Float(precision=53), nullable=True),
        sa.Column("top_product_code", sa.String(length=64), nullable=True),
    ]


def upgrade() -> None:
    for column in columns():
        op.add_column("derived_metrics", column)


def downgrade() -> None:
    for column in reversed(columns()):
        op.drop_column("derived_metrics", column.name)
