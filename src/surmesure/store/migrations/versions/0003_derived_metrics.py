"""derived metrics (RFM, CLV, engagement, satisfaction) per person and day

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24 23:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "derived_metrics",
        sa.Column("person_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("computed_on", sa.Date(), nullable=False, comment="UTC day of the run"),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False, comment="reference date of the metrics"),
        sa.Column("customer_id", sa.String(length=320), nullable=True),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=True),
        sa.Column("monetary", sa.Float(precision=53), nullable=True),
        sa.Column("r_score", sa.SmallInteger(), nullable=True),
        sa.Column("f_score", sa.SmallInteger(), nullable=True),
        sa.Column("m_score", sa.SmallInteger(), nullable=True),
        sa.Column("fm_score", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_segment", sa.String(length=32), nullable=True),
        sa.Column("repeat_purchases", sa.Integer(), nullable=True),
        sa.Column("purchase_span_days", sa.Integer(), nullable=True),
        sa.Column("customer_age_days", sa.Integer(), nullable=True),
        sa.Column("mean_repeat_value", sa.Float(precision=53), nullable=True),
        sa.Column("expected_purchases", sa.Float(precision=53), nullable=True),
        sa.Column("p_alive", sa.Float(precision=53), nullable=True),
        sa.Column("expected_value", sa.Float(precision=53), nullable=True),
        sa.Column("email_sent", sa.Integer(), nullable=True),
        sa.Column("email_opens", sa.Integer(), nullable=True),
        sa.Column("email_clicks", sa.Integer(), nullable=True),
        sa.Column("open_rate", sa.Float(precision=53), nullable=True),
        sa.Column("click_rate", sa.Float(precision=53), nullable=True),
        sa.Column("purchases_per_month", sa.Float(precision=53), nullable=True),
        sa.Column("days_since_interaction", sa.Integer(), nullable=True),
        sa.Column("gap_regularity", sa.Float(precision=53), nullable=True),
        sa.Column("nps_last", sa.SmallInteger(), nullable=True),
        sa.Column("nps_group", sa.String(length=16), nullable=True),
        sa.Column("csat_satisfied_share", sa.Float(precision=53), nullable=True),
        sa.Column("ces_mean", sa.Float(precision=53), nullable=True),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("discount_rate", sa.Float(precision=53), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "computed_on", name=op.f("pk_derived_metrics")),
        comment="Derived metrics (RFM, CLV, engagement, satisfaction) per person, one row per "
        "person and day of computation; a second run the same day replaces that day's rows.",
    )


def downgrade() -> None:
    op.drop_table("derived_metrics")
