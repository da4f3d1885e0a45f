"""The derive stage's table: the metrics computed per person and day. Part of
:mod:`surmesure.store.schema`, which re-exports it."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Money, metadata

derived_metrics = sa.Table(
    "derived_metrics",
    metadata,
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("computed_on", sa.Date, primary_key=True, comment="UTC day of the run"),
    sa.Column("computed_at", sa.DateTime, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False, comment="reference date of the metrics"),
    sa.Column("customer_id", sa.String(320), nullable=True),
    sa.Column("recency_days", sa.Integer, nullable=True),
    sa.Column("frequency", sa.Integer, nullable=True),
    sa.Column("monetary", Money, nullable=True),
    sa.Column("r_score", sa.SmallInteger, nullable=True),
    sa.Column("f_score", sa.SmallInteger, nullable=True),
    sa.Column("m_score", sa.SmallInteger, nullable=True),
    sa.Column("fm_score", sa.SmallInteger, nullable=True),
    sa.Column("rfm_segment", sa.String(32), nullable=True),
    sa.Column("repeat_purchases", sa.Integer, nullable=True),
    sa.Column("purchase_span_days", sa.Integer, nullable=True),
    sa.Column("customer_age_days", sa.Integer, nullable=True),
    sa.Column("mean_repeat_value", Money, nullable=True),
    sa.Column("expected_purchases", sa.Float(precision=53), nullable=True),
    sa.Column("p_alive", sa.Float(precision=53), nullable=True),
    sa.Column("expected_value", Money, nullable=True),
    sa.Column("email_sent", sa.Integer, nullable=True),
    sa.Column("email_opens", sa.Integer, nullable=True),
    sa.Column("email_clicks", sa.Integer, nullable=True),
    sa.Column("open_rate", sa.Float(precision=53), nullable=True),
    sa.Column("click_rate", sa.Float(precision=53), nullable=True),
    sa.Column("purchases_per_month", sa.Float(precision=53), nullable=True),
    sa.Column("days_since_interaction", sa.Integer, nullable=True),
    sa.Column("gap_regularity", sa.Float(precision=53), nullable=True),
    sa.Column("nps_last", sa.SmallInteger, nullable=True),
    sa.Column("nps_group", sa.String(16), nullable=True),
    sa.Column("csat_satisfied_share", sa.Float(precision=53), nullable=True),
    sa.Column("ces_mean", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_email", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_sms", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_phone", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_paper", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_web", sa.Float(precision=53), nullable=True),
    sa.Column("best_channel", sa.String(16), nullable=True),
    sa.Column("preferred_store_id", sa.String(64), nullable=True),
    sa.Column("preferred_store_basis", sa.String(16), nullable=True, comment="orders, home_store"),
    sa.Column("preferred_store_km", sa.Float(precision=53), nullable=True),
    sa.Column("top_category_1", sa.String(128), nullable=True),
    sa.Column("top_category_2", sa.String(128), nullable=True),
    sa.Column("top_category_3", sa.String(128), nullable=True),
    sa.Column("top_category_share", sa.Float(precision=53), nullable=True),
    sa.Column("top_product_code", sa.String(64), nullable=True),
    sa.Column("category_breadth", sa.Integer, nullable=True),
    sa.Column("upsell_potential", sa.Float(precision=53), nullable=True),
    sa.Column("relational_engagement", sa.Float(precision=53), nullable=True),
    sa.Column("transactional_engagement", sa.Float(precision=53), nullable=True),
    sa.Column("engagement_score", sa.Float(precision=53), nullable=True),
    sa.Column(
        "p_purchase_30d",
        sa.Float(precision=53),
        nullable=True,
        comment="calibrated probability of a purchase in the 30 days after as_of",
    ),
    sa.Column(
        "p_purchase_90d",
        sa.Float(precision=53),
        nullable=True,
        comment="calibrated probability of a purchase in the 90 days after as_of",
    ),
    sa.Column("horizon_days", sa.Integer, nullable=False),
    sa.Column("discount_rate", sa.Float(precision=53), nullable=False),
    sa.Column("window_days", sa.Integer, nullable=False),
    info={"personal": "person_id"},
    comment="Derived metrics (RFM, CLV, engagement, satisfaction) per person, one row per "
    "person and day of computation; a second run the same day replaces that day's rows.",
)

TABLES = (derived_metrics,)
"""The tables this stage owns: no other stage's module defines them."""
