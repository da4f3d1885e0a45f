"""a covering index of events by person and time, on PostgreSQL

A segment's event conditions read a person's events in a window by type and name; with
``(person_id, occurred_at) INCLUDE (type, event)`` PostgreSQL answers them from the index
alone, without visiting the table. DuckDB is left as it is: its indexes include no columns,
and it scans events faster than it would look them up.

Revision ID: 0038
Revises: 0036
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

NAME = "ix_events_person_id_occurred_at"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        NAME, "events", ["person_id", "occurred_at"], postgresql_include=["type", "event"]
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(NAME, table_name="events")
