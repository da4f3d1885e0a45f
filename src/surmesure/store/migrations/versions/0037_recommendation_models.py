"""recommendation models: the recommendation model fitted once and kept, by version

Adds ``recommendation_models`` (version): the learned signals (BM25 neighbours, ALS factors)
and the learned ranker's trees as numpy arrays (``.npz``, read back without pickle), fitted on
the data before ``as_of`` by ``recommend --fit`` or the demo, and read by every process that
recommends instead of fitting again.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from surmesure.store.meta import Json

revision = "0037"
down_revision = "0039"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recommendation_models",
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("fitted_at", sa.DateTime, nullable=False),
        sa.Column("as_of", sa.DateTime, nullable=False, comment="fitted on the data before it"),
        sa.Column("data_until", sa.DateTime, nullable=True, comment="the latest order it saw"),
        sa.Column(
            "payload",
            sa.LargeBinary,
            nullable=False,
            comment="the fitted signals and the ranker's trees as numpy arrays (.npz, no pickle)",
        ),
        sa.Column("digest", sa.String(64), nullable=False, comment="SHA-256 of payload"),
        sa.Column(
            "metrics", Json, nullable=False, comment="what was fitted, on how much, how long"
        ),
        sa.PrimaryKeyConstraint("version"),
        comment="Recommendation models fitted once (recommend --fit, the demo) and read by every "
        "process that recommends, by version.",
    )


def downgrade() -> None:
    op.drop_table("recommendation_models")
