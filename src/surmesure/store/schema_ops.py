"""The operations' table: runs of the scheduled jobs. Part of
:mod:`surmesure.store.schema`, which re-exports it."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import metadata

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("job", sa.String(32), nullable=False, comment="derive, segment_refresh, retention"),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True, comment="empty while it runs"),
    sa.Column("ok", sa.Boolean, nullable=True, comment="empty while it runs"),
    sa.Column("summary", sa.String(512), nullable=True, comment="one line, no personal value"),
    sa.Column("actor", sa.String(64), nullable=False, comment="scheduler or cli:<user>"),
    sa.Index(None, "job", "started_at"),
    info={"personal": None},
    comment="Runs of derive, segment refresh and retention, by the scheduler or by hand.",
)

TABLES = (job_runs,)
"""The tables this stage owns: no other stage's module defines them."""
