"""Retention: personal data is not kept longer than its purpose needs.

``SURMESURE_RETENTION_DAYS`` says how many days each kind of record is kept, counted back from
now (naive UTC):

- ``events``: collected events, by the time they happened;
- ``decisions``: decisions and the exposure ledger, by the time they were made or shown;
- ``quarantine``: refused records and their payloads, by the time they were refused; each
  record's key is destroyed with it (:mod:`surmesure.protect.quarantined`), so a copy of its
  sealed payload left in a backup no longer opens;
- ``audit``: the audit log, by the time of the act;
- ``videos``: the cached scene clips of films, by their last use.

A kind set to 0 is kept for ever. Page links are not stored: a link lives at most
``SURMESURE_PAGE_LINK_MAX_DAYS``; the films whose video links have all expired, and the films
no record names, are removed whatever the days say (:mod:`surmesure.deliver.video_retention`).
:func:`run_retention` deletes what is older than its limit in one transaction (the nodes whose
events went are counted again: :mod:`surmesure.collect.counts`), then sweeps the video folder,
and says how many rows of each table and files of each kind went and the cut-off applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from surmesure.clock import utcnow
from surmesure.collect import counts
from surmesure.deliver import video_retention
from surmesure.protect import quarantined
from surmesure.store import schema
from surmesure.store.engine import Store

#: each kind of record: the tables it covers, with the column that dates a row
KINDS: dict[str, tuple[tuple[sa.Table, str], ...]] = {
    "events": ((schema.events, "occurred_at"),),
    "decisions": ((schema.decisions, "decided_at"), (schema.exposures, "shown_at")),
    "quarantine": ((schema.quarantine, "created_at"),),
    "audit": ((schema.audit_log, "occurred_at"),),
}

VIDEOS = "videos"
"""The kind of the video folder's cached clips (see :mod:`surmesure.deliver.video_retention`)."""


@dataclass
class Retention:
    """What a run removed (or, dry, would remove): rows by table, files of the video folder
    by kind (``films``, ``clips``, ``leftovers``), and each kind's cut-off."""

    at: datetime
    dry_run: bool
    cutoffs: dict[str, datetime | None] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "dry_run": self.dry_run,
            "cutoffs": self.cutoffs,
            "removed": self.removed,
            "files": self.files,
        }


def run_retention(
    store: Store, days: dict[str, int], *, now: datetime | None = None, dry_run: bool = False
) -> Retention:
    """Delete every record older than its kind's limit in ``days`` (0: kept for ever)."""
    at = now or utcnow()
    result = Retention(at, dry_run)
    with store.begin() as conn:
        for kind, tables in KINDS.items():
            limit = days.get(kind, 0)
            cutoff = at - timedelta(days=limit) if limit > 0 else None
            result.cutoffs[kind] = cutoff
            for table, column in tables:
                if cutoff is None:
                    result.removed[str(table.name)] = 0
                    continue
                old = table.c[column] < cutoff
                count = conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(old)
                ).scalar_one()
                result.removed[str(table.name)] = int(count)
                if count and not dry_run and table is schema.quarantine:
                    quarantined.delete(conn, old)
                elif count and not dry_run and table is schema.events:
                    # the nodes whose events go are counted again without them
                    nodes = sa.select(table.c.node_id).where(old).distinct()
                    touched = [n for n in conn.execute(nodes).scalars() if n is not None]
                    conn.execute(table.delete().where(old))
                    counts.recount(conn, touched)
                elif count and not dry_run:
                    conn.execute(table.delete().where(old))
    clips = days.get(VIDEOS, 0)
    result.cutoffs[VIDEOS] = at - timedelta(days=clips) if clips > 0 else None
    swept = video_retention.sweep(store, days=clips, now=at, dry_run=dry_run)
    result.removed[str(schema.video_films.name)] = swept.rows
    result.files = {"films": swept.films, "clips": swept.clips, "leftovers": swept.leftovers}
    return result
