"""People rows for channel tests: ids, and who was merged into whom."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from surmesure.store import Store, schema


def add_people(store: Store, *rows: tuple[int, int | None]) -> None:
    """``(person_id, merged_into)`` rows, created on 2026-01-01."""
    at = datetime(2026, 1, 1)
    with store.begin() as conn:
        conn.execute(
            schema.people.insert(),
            [dict(person_id=p, merged_into=m, created_at=at, updated_at=at) for p, m in rows],
        )


def activity_rows(store: Store, *columns: str) -> list[tuple[Any, ...]]:
    """The ``columns`` of every ``channel_activity`` row, oldest first."""
    a = schema.channel_activity
    with store.connect() as conn:
        rows = conn.execute(sa.select(*(a.c[c] for c in columns)).order_by(a.c.occurred_at))
        return [tuple(r) for r in rows]
