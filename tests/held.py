"""The identifiers a store holds, opened: ``(kind, value, person_id, source)`` per row, for
tests that check what identity resolution wrote (the table holds blind indexes and sealed
values, :mod:`surmesure.protect.blind`)."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.protect import blind
from surmesure.store import Store, schema


def held(store: Store, kind: str | None = None) -> list[tuple[str, str | None, int, str]]:
    """Every identifier (of ``kind``), opened, sorted."""
    i = schema.identifiers
    query = sa.select(i.c.kind, i.c.node_id, i.c.sealed, i.c.person_id, i.c.source)
    if kind is not None:
        query = query.where(i.c.kind == kind)
    with store.connect() as conn:
        rows = conn.execute(query).fetchall()
        values = blind.ring(store).open_many(
            conn, [int(r.node_id) for r in rows], [r.sealed for r in rows]
        )
    return sorted(
        (str(r.kind), v, int(r.person_id), str(r.source)) for r, v in zip(rows, values, strict=True)
    )
