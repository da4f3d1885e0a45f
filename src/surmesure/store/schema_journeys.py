"""The journeys stage's tables: journeys and their versions, where each person is in each
journey, and what happened to them. Part of :mod:`surmesure.store.schema`, which re-exports
them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Json, metadata

journeys = sa.Table(
    "journeys",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, comment="the version new people enter"),
    sa.Column(
        "status",
        sa.String(16),
        nullable=False,
        default="active",
        comment="active, paused or archived",
    ),
    sa.Column(
        "entries_read_at",
        sa.DateTime,
        nullable=True,
        comment="segment changes and schedules are read up to here",
    ),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="Journeys by name, the version in force and whether people move through it.",
)

journey_versions = sa.Table(
    "journey_versions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", Json, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="Every published document of every journey; people stay on the version they entered.",
)

journey_people = sa.Table(
    "journey_people",
    metadata,
    sa.Column("journey", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, primary_key=True),
    sa.Column("entry", sa.Integer, primary_key=True, comment="1 for the first time in, ..."),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("status", sa.String(8), nullable=False, comment="running or done"),
    sa.Column("due_at", sa.DateTime, nullable=True, comment="when the step's pause ends"),
    sa.Column("product", sa.String(64), nullable=True, comment="the product the entry was about"),
    sa.Column("held", sa.Boolean, nullable=False, comment="on a split's control path"),
    sa.Column("reason", sa.String(64), nullable=True, comment="why it ended"),
    sa.Column("entered_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index(None, "status", "due_at"),
    sa.Index(None, "person_id"),
    info={"personal": "person_id"},
    comment="Where each person is in each journey (one row per entry), with the time the "
    "step's pause ends.",
)

journey_log = sa.Table(
    "journey_log",
    metadata,
    sa.Column("journey", sa.String(64), nullable=False),
    sa.Column("person_id", sa.BigInteger, nullable=False),
    sa.Column("entry", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("what", sa.String(80), nullable=False, comment="why the person moved, or ended"),
    sa.Column("logged_at", sa.DateTime, nullable=False),
    sa.Index(None, "journey", "person_id"),
    info={"personal": "person_id"},
    comment="Each step each person went through, and each end, with its reason: the funnel.",
)

TABLES = (
    journeys,
    journey_versions,
    journey_people,
    journey_log,
)
"""The tables this stage owns: no other stage's module defines them."""
