"""an index on identifiers.value alone, so that DuckDB finds an identifier without reading them all

DuckDB uses no index of several columns to answer a query, so each lookup of identifiers by
their primary key (kind, value) read the whole table: 28 ms of CPU per collection commit at
a million identifiers. The value is a blind index of the kind and the value, so it finds the
row alone.

Revision ID: 0027
Revises: 0023
Create Date: 2026-12-05 03:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_identifiers_value"), "identifiers", ["value"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_identifiers_value"), table_name="identifiers")
