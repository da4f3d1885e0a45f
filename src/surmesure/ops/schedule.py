"""When each job is due: the schedule's written form and the next due time. Pure, no I/O.

A rule is ``"every N<unit>"`` (unit ``s``, ``m``, ``h`` or ``d``; at least one second),
``"daily HH:MM"`` (UTC, 24-hour clock) or ``"off"``. Times are naive UTC, as in the store.

Due-ness counts from the job's last recorded run (its start), whoever ran it: an interval job
is due one interval after it; a daily job at the first HH:MM after it. A job never run counts
from ``since`` (the scheduler's start) the same way, so a server that starts does not run
every job at once, and one that restarts does not run again a job that just ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import assert_never

JOBS = ("derive", "segment_refresh", "retention", "cascades")
"""The jobs a schedule may name, in the order they run when due together."""

DEFAULT_SCHEDULE: dict[str, str] = {
    "derive": "daily 03:00",
    "segment_refresh": "every 15m",
    "retention": "daily 04:00",
    "cascades": "every 15m",
}

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
EVERY = re.compile(r"every\s+(\d{1,6})\s*([smhd])")
DAILY = re.compile(r"daily\s+([01]\d|2[0-3]):([0-5]\d)")
FORMAT_HINT = "write 'every 15m' (units s, m, h, d), 'daily 03:00' (UTC) or 'off'"


@dataclass(frozen=True)
class Every:
    interval: timedelta


@dataclass(frozen=True)
class Daily:
    at: time


Rule = Every | Daily


def parse_rule(text: str) -> Rule | None:
    """The rule ``text`` writes, or None for ``"off"``; :class:`ValueError` saying the format
    for anything else."""
    written = text.strip().lower()
    if written == "off":
        return None
    if match := EVERY.fullmatch(written):
        seconds = int(match[1]) * UNITS[match[2]]
        if seconds > 0:
            return Every(timedelta(seconds=seconds))
    if match := DAILY.fullmatch(written):
        return Daily(time(int(match[1]), int(match[2])))
    raise ValueError(f"{text!r} is not a schedule; {FORMAT_HINT}")


def parse_schedule(schedule: dict[str, str]) -> dict[str, Rule]:
    """The rule of each job that runs (``"off"`` left out), in :data:`JOBS` order;
    :class:`ValueError` naming the job for an unknown job or a rule not understood."""
    unknown = sorted(set(schedule) - set(JOBS))
    if unknown:
        raise ValueError(f"schedule names the job {unknown[0]!r}; the jobs are {', '.join(JOBS)}")
    rules = {}
    for job in JOBS:
        if job not in schedule:
            continue
        try:
            rule = parse_rule(schedule[job])
        except ValueError as exc:
            raise ValueError(f"schedule[{job!r}]: {exc}") from None
        if rule is not None:
            rules[job] = rule
    return rules


def next_due(rule: Rule, last: datetime | None, since: datetime) -> datetime:
    """When a job with ``rule``, last started at ``last`` (None: never), is next due."""
    after = last if last is not None else since
    match rule:
        case Every(interval):
            return after + interval
        case Daily(at):
            candidate = datetime.combine(after.date(), at)
            return candidate if candidate > after else candidate + timedelta(days=1)
        case _:
            assert_never(rule)
