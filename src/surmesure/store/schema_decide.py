"""The decide stage's tables: every decision made and every content block shown. Part of
:mod:`surmesure.store.schema`, which re-exports them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Json, metadata, person_columns

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("placement", sa.String(64), nullable=False),
    sa.Column("context", Json, nullable=True),
    sa.Column("result", Json, nullable=True),
    sa.Column("explanation", Json, nullable=True),
    sa.Column("decided_at", sa.DateTime, nullable=False, index=True),
    sa.Column(
        "sealed",
        sa.LargeBinary,
        nullable=True,
        comment="context, result and explanation of a person's decision, sealed",
    ),
    info={"personal": "person_id", "sealed": ("person_id", ("context", "result", "explanation"))},
    comment="Every decision made (content, offers, products) with its context and explanation.",
)

exposures = sa.Table(
    "exposures",
    metadata,
    sa.Column("exposure_id", sa.String(64), primary_key=True),
    *person_columns(),
    sa.Column("content_id", sa.String(128), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=True),
    sa.Column("placement", sa.String(64), nullable=True),
    sa.Column("shown_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=True, comment="the content's own expiry"),
    info={"personal": "person_id"},
    comment="Every content block shown to a person, on any channel: the exposure ledger.",
)

action_models = sa.Table(
    "action_models",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
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
    info={"personal": None},
    comment="Next-best-action models by name and version (saved by uplift actions --save), "
    "read by templates that name one.",
)

recommendation_models = sa.Table(
    "recommendation_models",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
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
    sa.Column("metrics", Json, nullable=False, comment="what was fitted, on how much, how long"),
    info={"personal": None},
    comment="Recommendation models fitted once (recommend --fit, the demo) and read by every "
    "process that recommends, by version.",
)

TABLES = (
    decisions,
    exposures,
    action_models,
    recommendation_models,
)
"""The tables this stage owns: no other stage's module defines them."""
