"""The segment stage's tables: segments and their versions, who is in each and who entered or
left it. Part of :mod:`surmesure.store.schema`, which re-exports them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Json, metadata

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, comment="current version"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="Segments by name, with the version in force.",
)

segment_versions = sa.Table(
    "segment_versions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", Json, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="Every saved definition of every segment; a changed definition adds a version.",
)

segment_members = sa.Table(
    "segment_members",
    metadata,
    sa.Column("segment", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entered_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Who is in each segment since its last refresh (or real-time update).",
)

segment_changes = sa.Table(
    "segment_changes",
    metadata,
    sa.Column("segment", sa.String(64), nullable=False, index=True),
    sa.Column("person_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("change", sa.String(8), nullable=False, comment="entered or exited"),
    sa.Column("changed_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Who entered and who left each segment, and when.",
)

TABLES = (
    segments,
    segment_versions,
    segment_members,
    segment_changes,
)
"""The tables this stage owns: no other stage's module defines them."""
