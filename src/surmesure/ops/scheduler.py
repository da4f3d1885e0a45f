"""The server's scheduler: an asyncio task that runs each due job in a worker thread.

Jobs run one at a time, so none overlaps itself or another; each run is recorded
(:mod:`surmesure.ops.runs`) under a key made of the job and its due time, so of several servers
sharing a store only one runs it. Due-ness is read again from the store before every decision
(:mod:`surmesure.ops.schedule`), so a run by hand or by another server pushes the next one
back. A job that fails is recorded with its error and the scheduler goes on; a store that does
not answer is tried again a few seconds later. Cancelling the task waits for a job under way
to end (a worker thread cannot be stopped), then stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from fastapi.concurrency import run_in_threadpool

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.errors import trace_of
from surmesure.ops.runs import last_runs, run_job
from surmesure.ops.schedule import next_due, parse_schedule
from surmesure.store.engine import Store

log = logging.getLogger("surmesure.schedule")

LONGEST_SLEEP = 60.0
"""Most seconds between two reads of the last runs."""
RETRY_SECONDS = 5.0
"""Seconds before reading the last runs again when the store did not answer."""


async def run_schedule(
    store: Store, settings: Settings, clock: Callable[[], datetime] = utcnow
) -> None:
    """Run the jobs of ``settings.schedule`` as they fall due, until cancelled."""
    rules = parse_schedule(settings.schedule)
    if not rules:
        return
    since = clock()
    while True:
        try:
            last = await run_in_threadpool(last_runs, store)
        except Exception as exc:
            log.warning("could not read the last job runs; trying again\n%s", trace_of(exc))
            await asyncio.sleep(RETRY_SECONDS)
            continue
        started = {job: (run or {}).get("started_at") for job, run in last.items()}
        due = {job: next_due(rule, started.get(job), since) for job, rule in rules.items()}
        now = clock()
        ready = [job for job in rules if due[job] <= now]
        if not ready:
            wait = (min(due.values()) - now).total_seconds()
            await asyncio.sleep(min(max(wait, 0.01), LONGEST_SLEEP))
            continue
        job = min(ready, key=lambda j: due[j])
        try:
            run = await run_in_threadpool(run_job, store, settings, job, due[job])
            if run is None:
                log.info("%s: started by another server", job)
            else:
                log.info("%s: %s", job, run.summary)
        except Exception as exc:
            log.error("scheduled %s failed\n%s", job, trace_of(exc))
            await asyncio.sleep(RETRY_SECONDS)  # the run may not be recorded: do not spin
