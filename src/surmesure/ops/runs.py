"""The record of job runs (table ``job_runs``) and the jobs themselves.

Every run of derive, segment refresh and retention, by the scheduler or by a command, is one
row: inserted when it starts (``ok`` empty while it runs), completed when it ends with ``ok``
and a one-line summary. A failed run's summary names the error's type and the place it was
raised, never its message, which may quote a person's data (a database's DETAIL line does).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.ops.schedule import JOBS, Every, next_due, parse_rule
from surmesure.store.engine import Store
from surmesure.store.schema import job_runs

if TYPE_CHECKING:
    from surmesure.derive.run import DeriveResult
    from surmesure.segment.membership import Refreshed

SCHEDULER = "scheduler"


@dataclass
class Run:
    """A run under way; the job sets ``summary`` before it ends."""

    job: str
    summary: str = ""


class Claimed(Exception):
    """Another server already started the run of this job due at this time."""


@contextmanager
def recorded(store: Store, job: str, actor: str, due: datetime | None = None) -> Iterator[Run]:
    """Record a run of ``job`` around the block: started now, then finished with the block's
    summary, or failed with its error's type and place (the error goes on).

    A scheduled run names the time it was ``due``: its row's key is made of the job and that
    time, so of several servers sharing the store only the first runs it; the others get
    :class:`Claimed` before the block starts."""
    run_id = uuid.uuid4().hex if due is None else slot_id(job, due)
    claim = (
        postgresql.insert(job_runs)
        .values(run_id=run_id, job=job, started_at=utcnow(), actor=actor)
        .on_conflict_do_nothing(index_elements=["run_id"])
        .returning(job_runs.c.run_id)
    )
    with store.begin() as conn:
        if conn.execute(claim).first() is None:
            raise Claimed(job)
    run = Run(job)
    try:
        yield run
    except BaseException as exc:
        _finish(store, run_id, ok=False, summary=failure(exc))
        raise
    _finish(store, run_id, ok=True, summary=run.summary)


def slot_id(job: str, due: datetime) -> str:
    """The key of the scheduled run of ``job`` due at ``due``, the same in every server."""
    return hashlib.sha256(f"{job}|{due.isoformat()}".encode()).hexdigest()[:32]


def _finish(store: Store, run_id: str, *, ok: bool, summary: str) -> None:
    with store.begin() as conn:
        conn.execute(
            job_runs.update()
            .where(job_runs.c.run_id == run_id)
            .values(finished_at=utcnow(), ok=ok, summary=summary[:512])
        )


def failure(exc: BaseException) -> str:
    """One line on an error: its type and where it was raised, no message."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    place = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else ""
    code = getattr(exc, "code", None)
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"{kind}{f' ({code})' if isinstance(code, str) else ''}{place}"


def last_runs(store: Store) -> dict[str, dict[str, Any]]:
    """The latest run of each job that ever ran: started_at, finished_at, ok, summary, actor."""
    latest = (
        sa.select(job_runs.c.job, sa.func.max(job_runs.c.started_at).label("started_at"))
        .group_by(job_runs.c.job)
        .subquery()
    )
    query = sa.select(
        job_runs.c.job,
        job_runs.c.started_at,
        job_runs.c.finished_at,
        job_runs.c.ok,
        job_runs.c.summary,
        job_runs.c.actor,
    ).join(
        latest,
        sa.and_(job_runs.c.job == latest.c.job, job_runs.c.started_at == latest.c.started_at),
    )
    with store.connect() as conn:
        rows = conn.execute(query)
        return {row.job: {str(k): v for k, v in row._mapping.items()} for row in rows}


def job_status(
    store: Store, schedule: dict[str, str], now: datetime | None = None
) -> list[dict[str, Any]]:
    """Each job's schedule, last run (None: never) and next due time. A job never run has no
    next due time when it runs at an interval: the first run is one interval after the server
    starts."""
    now = now or utcnow()
    last = last_runs(store)
    out = []
    for job in JOBS:
        written = schedule.get(job, "off")
        rule = parse_rule(written)
        run = last.get(job)
        started = run["started_at"] if run else None
        due = None
        if rule is not None and (started is not None or not isinstance(rule, Every)):
            due = next_due(rule, started, now)
        out.append({"job": job, "schedule": written, "last_run": run, "next_due": due})
    return out


def run_job(store: Store, settings: Settings, job: str, due: datetime | None = None) -> Run | None:
    """Run ``job`` once as the scheduler does, recorded; None when another server already
    started the run due at ``due``."""
    try:
        with recorded(store, job, SCHEDULER, due) as run:
            run.summary = JOB_FUNCTIONS[job](store, settings)
    except Claimed:
        return None
    return run


def _derive(store: Store, settings: Settings) -> str:
    from surmesure.derive.run import derive

    return derived_summary(derive(store))


def derived_summary(result: DeriveResult) -> str:
    return f"{result.people:,} people as of {result.as_of}, {result.rows_written:,} rows written"


def _segment_refresh(store: Store, settings: Settings) -> str:
    from surmesure.segment.membership import refresh

    return refreshed_summary(refresh(store, None, utcnow()))


def refreshed_summary(results: list[Refreshed]) -> str:
    entered = sum(r.entered for r in results)
    exited = sum(r.exited for r in results)
    return f"{len(results)} segments refreshed, {entered:,} entered, {exited:,} exited"


def _retention(store: Store, settings: Settings) -> str:
    from surmesure.protect import audit
    from surmesure.protect.retention import run_retention

    result = run_retention(store, settings.retention_days)
    audit.record(store, SCHEDULER, "retention.run", detail=result.removed | result.files)
    return removed_summary(result.removed, result.files)


def removed_summary(removed: dict[str, int], files: dict[str, int] | None = None) -> str:
    rows = f"{sum(removed.values()):,} rows removed"
    return rows if files is None else f"{rows}, {sum(files.values()):,} video files"


def _cascades(store: Store, settings: Settings) -> str:
    from surmesure.deliver.cascade import advance_all

    return f"{advance_all(store, utcnow()):,} cascade rows planned"


JOB_FUNCTIONS: dict[str, Callable[[Store, Settings], str]] = {
    "derive": _derive,
    "segment_refresh": _segment_refresh,
    "retention": _retention,
    "cascades": _cascades,
}
