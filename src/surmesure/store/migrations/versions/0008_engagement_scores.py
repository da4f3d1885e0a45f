"""derived metrics: category breadth, up-sell potential and engagement scores

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def columns() -> list[sa.Column[object]]:
    return [
        sa.Column("category_breadth", sa.Integer(), nullable=True),
        sa.Column("upsell_potential", sa.Float(precision=53), nullable=True),
        sa.Column("relational_engagement", sa.Float(precision=53), nullable=True),
        sa.Column("transactional_engagement", sa.Float(precision=53), nullable=True),
        sa.Column("engagement_score", sa.Float(precision=53), nullable=True),
    ]


def upgrade() -> None:
    for column in columns():
        op.add_column("derived_metrics", column)


def downgrade() -> None:
    for column in reversed(columns()):
        op.drop_column("derived_metrics", column.name)
