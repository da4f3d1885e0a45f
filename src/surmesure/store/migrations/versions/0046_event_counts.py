"""event counts per identity node, type and name

Adds ``event_counts``: how many events each identity node has of each type and name, and the
latest time among them, kept by collection in the transaction that stores the events, so
real-time segment membership reads a row per node and name instead of scanning every event
(:mod:`surmesure.collect.counts`). The events already stored are counted here.

Revision ID: 0046
Revises: 0043
Create Date: 2026-12-05 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0046"
down_revision = "0045"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_counts",
        sa.Column("node_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("event", sa.String(256), nullable=False, comment="'' for an event unnamed"),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.DateTime, nullable=False, comment="the latest occurred_at counted"),
        sa.PrimaryKeyConstraint("node_id", "type", "event", name="pk_event_counts"),
        comment="How many events each identity node has of each type and name, kept with "
        "events: real-time segment membership reads it rather than every event (migration "
        "0046).",
    )
    # counted before the index is made: an index is filled faster at its creation
    op.execute(
        "INSERT INTO event_counts (node_id, type, event, person_id, count, last_at) "
        "SELECT node_id, type, coalesce(event, ''), min(person_id), count(*), "
        "max(occurred_at) FROM events "
        "WHERE person_id IS NOT NULL AND node_id IS NOT NULL "
        "GROUP BY node_id, type, coalesce(event, '')"
    )
    if op.get_bind().dialect.name == "postgresql":  # DuckDB scans it: no index to keep up
        op.create_index("ix_event_counts_person_id", "event_counts", ["person_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_event_counts_person_id", table_name="event_counts")
    op.drop_table("event_counts")
