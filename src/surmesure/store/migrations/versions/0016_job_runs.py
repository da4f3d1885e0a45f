"""job_runs: runs of derive, segment refresh and retention, scheduled or by hand

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-04 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column(
            "job", sa.String(32), nullable=False, comment="derive, segment_refresh, retention"
        ),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True, comment="empty while it runs"),
        sa.Column("ok", sa.Boolean(), nullable=True, comment="empty while it runs"),
        sa.Column("summary", sa.String(512), nullable=True, comment="one line, no personal value"),
        sa.Column("actor", sa.String(64), nullable=False, comment="scheduler or cli:<user>"),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_job_runs")),
        comment="Runs of derive, segment refresh and retention, by the scheduler or by hand.",
    )
    op.create_index(
        op.f("ix_job_runs_job_started_at"), "job_runs", ["job", "started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_job_runs_job_started_at"), table_name="job_runs")
    op.drop_table("job_runs")
