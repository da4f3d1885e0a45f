"""comments the schema gives and earlier migrations did not write (PostgreSQL)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 01:15:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

IDENTIFIERS = (
    "Normalized identifiers (customer_id, email, phone, anonymous_id, loyalty_card): value "
    "holds the blind index of kind and value, sealed the value (protect.blind)."
)
SEALED = "empty: sealed"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # DuckDB's catalogue keeps no comment the store reads
    op.create_table_comment("identifiers", IDENTIFIERS)
    op.execute(f"COMMENT ON COLUMN quarantine.value IS '{SEALED}'")
    op.execute(f"COMMENT ON COLUMN quarantine.payload IS '{SEALED}'")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("COMMENT ON COLUMN quarantine.payload IS NULL")
    op.execute("COMMENT ON COLUMN quarantine.value IS NULL")
    op.create_table_comment(
        "identifiers",
        "Normalized identifiers (customer_id, email, phone, anonymous_id, loyalty_card).",
    )
