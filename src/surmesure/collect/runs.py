"""The import runs a store recorded (``import_runs``): what each file or replay brought."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from surmesure.store import schema
from surmesure.store.engine import Store

REPLAY_PREFIX = "replay:"
"""The path of a run that replayed quarantined records starts so (:mod:`.replay`)."""


def recent_runs(
    store: Store, *, limit: int = 50, run_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """The latest runs first (or those of ``run_ids``): kind, file name (a replay's marked
    ``replay``), counts read, accepted, quarantined and already stored, start and end."""
    r = schema.import_runs
    query = sa.select(
        r.c.run_id,
        r.c.kind,
        r.c.path,
        r.c.started_at,
        r.c.finished_at,
        r.c.rows_read,
        r.c.rows_accepted,
        r.c.rows_quarantined,
        r.c.rows_duplicate,
    ).order_by(r.c.run_id.desc())
    query = query.where(r.c.run_id.in_(run_ids)) if run_ids is not None else query.limit(limit)
    with store.connect() as conn:
        rows = [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(query)]
    for row in rows:
        path = str(row["path"])
        row["replay"] = path.startswith(REPLAY_PREFIX)
        row["file"] = path.removeprefix(REPLAY_PREFIX).replace("\\", "/").rsplit("/", 1)[-1]
    return rows
