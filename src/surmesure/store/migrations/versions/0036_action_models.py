"""action models: next-best-action models saved by name and version

Adds ``action_models`` (name, version): the fitted uplift model of each action, the features
and their encoding, each action's value and cost; written by ``uplift actions --save`` and read
by templates whose ``next_best_action`` names a model. It holds no person's data.

Revision ID: 0036
Revises: 0028
Create Date: 2026-12-05 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from surmesure.store.meta import Json

revision = "0036"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "action_models",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column(
            "description",
            Json,
            nullable=False,
            comment="actions with value and cost, features and their encoding, learner, figures",
        ),
        sa.Column(
            "models",
            sa.LargeBinary,
            nullable=False,
            comment="the fitted uplift model of each action, pickled; no person's data",
        ),
        sa.Column("digest", sa.String(64), nullable=False, comment="SHA-256 of models"),
        sa.PrimaryKeyConstraint("name", "version"),
        comment="Next-best-action models by name and version (saved by uplift actions --save), "
        "read by templates that name one.",
    )


def downgrade() -> None:
    op.drop_table("action_models")
