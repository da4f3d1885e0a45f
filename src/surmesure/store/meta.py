"""The metadata every stage's tables share, and the column types they have in common."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

Money = sa.Float(precision=53)


def person_columns() -> list[sa.Column[int]]:
    """The columns of a row that hangs off a person: the person now, after merges, and the
    identity node the row first attached to (so a merge can be undone)."""
    return [
        sa.Column("person_id", sa.BigInteger, nullable=True, index=True),
        sa.Column("node_id", sa.BigInteger, nullable=True),
    ]
