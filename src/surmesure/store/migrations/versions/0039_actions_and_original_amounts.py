"""campaign actions and orders' original amounts

Adds ``messages.action`` and ``messages.variant``: the next best action a campaign's template
model chose for the person (``do nothing`` included; NULL when none could be chosen) and the
template variant that carries it (:mod:`surmesure.deliver.next_best`). Adds
``orders.original_currency`` and ``orders.original_amount``: an order collected in another
currency than the store's keeps what was sent, beside its converted ``total_amount``
(:mod:`surmesure.collect.currency`). Rows written before stay NULL.

Revision ID: 0039
Revises: 0036
Create Date: 2026-12-05 09:10:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from surmesure.store.meta import Money

revision = "0039"
down_revision = "0036"
branch_labels = None
depends_on = None

COLUMNS: dict[tuple[str, str], tuple[sa.types.TypeEngine[Any], str]] = {
    ("messages", "action"): (
        sa.String(128),
        "the next best action chosen for the person (do nothing included)",
    ),
    ("messages", "variant"): (sa.String(64), "the template variant that carries the action"),
    ("orders", "original_currency"): (sa.String(3), "the currency the order was sent in"),
    ("orders", "original_amount"): (Money, "the amount as sent, before conversion"),
}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for (table, name), (kind, comment) in COLUMNS.items():
        op.add_column(table, sa.Column(name, kind, nullable=True))
        if postgres:  # DuckDB's catalogue keeps no comment the store reads
            op.execute(f"COMMENT ON COLUMN {table}.{name} IS '{comment}'")


def downgrade() -> None:
    conn = op.get_bind()
    for table in dict.fromkeys(t for t, _ in COLUMNS):
        # DuckDB alters no table an index depends on: its indexes are dropped and made again
        indexes = (
            conn.execute(
                sa.text("SELECT index_name, sql FROM duckdb_indexes() WHERE table_name = :t"),
                {"t": table},
            ).all()
            if conn.dialect.name == "duckdb"
            else []
        )
        for index, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{index}"'))
        for name in reversed([n for t, n in COLUMNS if t == table]):
            op.drop_column(table, name)
        for _, sql in indexes:
            conn.execute(sa.text(sql))
