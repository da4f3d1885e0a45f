"""The experiments' tables: their definitions and who is in which variant. Part of
:mod:`surmesure.store.schema`, which re-exports them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Json, metadata

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("definition", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, comment="created, running or stopped"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=True, comment="first assignment"),
    sa.Column("stopped_at", sa.DateTime, nullable=True),
    info={"personal": None},
    comment="Experiments by name with their definition (variants, metrics, window).",
)

experiment_assignments = sa.Table(
    "experiment_assignments",
    metadata,
    sa.Column("experiment", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("variant", sa.String(64), nullable=False),
    sa.Column("assigned_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Who is in which variant of each experiment, and since when; never reassigned.",
)

TABLES = (
    experiments,
    experiment_assignments,
)
"""The tables this stage owns: no other stage's module defines them."""
