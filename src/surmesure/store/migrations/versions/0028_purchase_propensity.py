"""purchase propensity: the calibrated probability of a purchase in 30 and 90 days

Adds ``derived_metrics.p_purchase_30d`` and ``p_purchase_90d``, written by ``derive``
(:mod:`surmesure.derive.propensity`); rows computed before stay NULL there.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 03:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

COLUMNS = {
    "p_purchase_30d": "calibrated probability of a purchase in the 30 days after as_of",
    "p_purchase_90d": "calibrated probability of a purchase in the 90 days after as_of",
}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, comment in COLUMNS.items():
        op.add_column(
            "derived_metrics",
            sa.Column(name, sa.Float(precision=53), nullable=True),
        )
        if postgres:  # DuckDB's catalogue keeps no comment the store reads
            op.execute(f"COMMENT ON COLUMN derived_metrics.{name} IS '{comment}'")


def downgrade() -> None:
    for name in reversed(list(COLUMNS)):
        op.drop_column("derived_metrics", name)
