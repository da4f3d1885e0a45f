"""the event name in the outbox

Adds ``changes.name``: the name of the event an ``event`` change stored (its ``event``
column, ``Order Completed`` for a track call), so the subscribers that care for a few names
(web orders, journey entries) pass over the other changes without reading ``events``. Changes
written before stay NULL and are read as before.

Revision ID: 0042
Revises: 0038
Create Date: 2026-12-05 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0038"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("changes", sa.Column("name", sa.String(256), nullable=True))
    if op.get_bind().dialect.name == "postgresql":  # DuckDB's catalogue keeps no comment
        op.execute("COMMENT ON COLUMN changes.name IS 'an event''s name'")


def downgrade() -> None:
    op.drop_column("changes", "name")  # its primary key is no index DuckDB keeps from this
