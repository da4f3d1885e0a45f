"""What a person asked of marketing beyond channels: topics, frequency, pause.

A preference record (table ``preferences``) says, at ``recorded_at`` (naive UTC), with its
``source`` and ``evidence``, one of:

- ``topic``: ``name`` a topic of ``Settings.preference_topics``, ``value`` ``in`` or ``out``;
- ``frequency``: ``value`` one of :data:`FREQUENCIES`;
- ``pause``: ``value`` ``on`` with ``until`` (the moment marketing resumes), or ``off``.

Records are never updated: the table is the history. For a kind and a name, the record *in
force* at ``now`` is the most recent recorded at or before ``now`` (then the greatest
``preference_id``). No record: every topic in, ``as_it_comes``, not paused. A pause is over by
itself at its ``until``.

What the stages do with them. A marketing decision (template ``purpose: marketing``) for a
paused person is suppressed with reason :data:`PAUSED` until the pause ends; one for a template
whose ``topic`` the person left is suppressed with reason :data:`TOPIC_REFUSED`, and an offer
block of a left topic is not offered. Channels stay the business of
:mod:`surmesure.protect.consent` (the one owner of "consent in force"); a refused channel is
checked first. The frequency is only recorded and read: the delivery stage asks
:func:`allowed_frequency` before sending, and holds a message back when the last marketing
message to the person is more recent than :attr:`Frequency.min_gap`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import InvalidInput
from surmesure.store import schema

KINDS = ("topic", "frequency", "pause")
FREQUENCIES = ("as_it_comes", "weekly", "monthly")
DEFAULT_FREQUENCY = "as_it_comes"
MIN_GAPS: dict[str, timedelta | None] = {
    "as_it_comes": None,
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=30),
}
PAUSED = "paused"
"""The reason a marketing decision is suppressed for a person who paused marketing."""
TOPIC_REFUSED = "topic_refused"
"""The reason a marketing decision is suppressed for a person who left its topic."""


@dataclass(frozen=True, slots=True)
class Preference:
    """One preference record as the rule reads it."""

    kind: str
    name: str
    value: str
    until: datetime | None
    recorded_at: datetime
    preference_id: str


@dataclass(frozen=True, slots=True)
class Frequency:
    """How often a person accepts marketing messages: ``value`` (one of :data:`FREQUENCIES`)
    and the least time between two of them (``None``: no limit)."""

    value: str
    min_gap: timedelta | None


def in_force(
    records: Iterable[Preference], kind: str, name: str, now: datetime
) -> Preference | None:
    """The record in force for ``kind`` and ``name`` at ``now`` (see the module), or ``None``."""
    return max(
        (r for r in records if r.kind == kind and r.name == name and r.recorded_at <= now),
        key=lambda r: (r.recorded_at, r.preference_id),
        default=None,
    )


def topic_refused(records: Iterable[Preference], topic: str, now: datetime) -> bool:
    """The person left ``topic`` (no record: not left)."""
    found = in_force(records, "topic", topic, now)
    return found is not None and found.value == "out"


def paused_until(records: Iterable[Preference], now: datetime) -> datetime | None:
    """The end of the pause in force at ``now``; ``None`` when marketing is not paused."""
    found = in_force(records, "pause", "", now)
    if found is None or found.value != "on" or found.until is None or found.until <= now:
        return None
    return found.until


def frequency(records: Iterable[Preference], now: datetime) -> Frequency:
    """The frequency in force at ``now`` (no record: :data:`DEFAULT_FREQUENCY`)."""
    found = in_force(records, "frequency", "", now)
    value = found.value if found is not None and found.value in MIN_GAPS else DEFAULT_FREQUENCY
    return Frequency(value, MIN_GAPS[value])


def held_back(records: Sequence[Preference], topic: str | None, now: datetime) -> str | None:
    """Why marketing content of ``topic`` is not for this person at ``now`` (:data:`PAUSED`,
    :data:`TOPIC_REFUSED`), or ``None`` when nothing holds it back."""
    if paused_until(records, now) is not None:
        return PAUSED
    if topic is not None and topic_refused(records, topic, now):
        return TOPIC_REFUSED
    return None


# -- the store ----------------------------------------------------------------------------------


def records_of(conn: Connection, person_id: int) -> tuple[Preference, ...]:
    """Every preference record of ``person_id``, any time."""
    p = schema.preferences
    rows = conn.execute(
        sa.select(p.c.kind, p.c.name, p.c.value, p.c.until, p.c.recorded_at, p.c.preference_id)
        .where(p.c.person_id == person_id)
    )  # fmt: skip
    return tuple(Preference(str(r[0]), str(r[1]), str(r[2]), r[3], r[4], str(r[5])) for r in rows)


def held_back_people(topic: str | None, now: datetime) -> sa.Select[Any]:
    """``SELECT person_id`` of the persons for whom marketing of ``topic`` is held back at
    ``now`` (:func:`held_back` for everyone): paused, or ``topic`` left."""
    p = schema.preferences
    wanted = p.c.kind == "pause"
    if topic is not None:
        wanted = wanted | ((p.c.kind == "topic") & (p.c.name == topic))
    ranked = (
        sa.select(
            p.c.person_id,
            p.c.kind,
            p.c.value,
            p.c.until,
            sa.func.row_number()
            .over(
                partition_by=(p.c.person_id, p.c.kind, p.c.name),
                order_by=(p.c.recorded_at.desc(), p.c.preference_id.desc()),
            )
            .label("rn"),
        )
        .where(p.c.recorded_at <= now, wanted)
        .subquery()
    )
    paused = (ranked.c.kind == "pause") & (ranked.c.value == "on") & (ranked.c.until > now)
    left = (ranked.c.kind == "topic") & (ranked.c.value == "out")
    return sa.select(ranked.c.person_id).where(ranked.c.rn == 1, paused | left).distinct()


def held_back_ids(conn: Connection, topic: str | None, now: datetime) -> set[int]:
    """The ids :func:`held_back_people` selects, read."""
    return {int(r[0]) for r in conn.execute(held_back_people(topic, now))}


def allowed_frequency(conn: Connection, person_id: int, now: datetime) -> Frequency:
    """How often ``person_id`` accepts marketing messages at ``now``: what the delivery stage
    reads before sending (see the module)."""
    return frequency(records_of(conn, person_id), now)


def preference_row(
    person_id: int,
    kind: str,
    value: str,
    *,
    name: str = "",
    until: datetime | None = None,
    source: str,
    evidence: str | None,
    recorded_at: datetime,
    pause_max_days: int,
) -> dict[str, Any]:
    """One row of ``preferences``, checked: a known kind, frequency, pause state, and a pause
    that starts ends after ``recorded_at`` and at most ``pause_max_days`` later (the caller's
    ``Settings.preference_pause_max_days``). This is the one place that rule lives: the API
    and the preference page both build their records here."""
    allowed = {"topic": ("in", "out"), "frequency": FREQUENCIES, "pause": ("on", "off")}
    if kind not in allowed:
        raise InvalidInput(
            f"Preference {kind!r} is not known.",
            field="kind",
            hint="use one of: " + ", ".join(KINDS),
        )
    if value not in allowed[kind]:
        raise InvalidInput(
            f"{kind} {value!r} is not known.",
            field=kind,
            hint="use one of: " + ", ".join(allowed[kind]),
        )
    if (kind == "topic") != bool(name) or (kind == "pause" and value == "on") != (
        until is not None
    ):
        raise InvalidInput(
            f"A {kind} preference with name {name!r} and until {until}.",
            field=kind,
            hint="a topic has a name; a pause that starts has an end (until)",
        )
    if kind == "pause" and until is not None:
        days = pause_max_days
        if not recorded_at < until <= recorded_at + timedelta(days=days):
            raise InvalidInput(
                f"A pause must end after it starts and within {days} days.",
                field="until",
                hint=f"give an end within {days} days",
            )
    return {
        "preference_id": uuid.uuid4().hex,
        "person_id": person_id,
        "node_id": person_id,
        "kind": kind,
        "name": name,
        "value": value,
        "until": until,
        "recorded_at": recorded_at,
        "source": source,
        "evidence": None if evidence is None else evidence[:512],
    }


def record(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows made by :func:`preference_row`; how many."""
    if rows:
        conn.execute(schema.preferences.insert(), list(rows))
    return len(rows)


def preferences_of(
    conn: Connection, person_id: int, now: datetime, topics: Iterable[str] = ()
) -> dict[str, Any]:
    """A person's preferences: ``{"in_force": {"topics", "frequency", "paused_until"},
    "history"}``. ``topics`` lists the topic of each name among ``topics`` and those the person
    has records for (``True``: in); ``history`` every record, oldest first."""
    p = schema.preferences
    rows = conn.execute(
        sa.select(p)
        .where(p.c.person_id == person_id)
        .order_by(p.c.recorded_at, p.c.kind, p.c.name, p.c.preference_id)
    ).all()
    records = [
        Preference(str(r.kind), str(r.name), str(r.value), r.until, r.recorded_at,
                   str(r.preference_id))
        for r in rows
    ]  # fmt: skip
    names = sorted(set(topics) | {r.name for r in records if r.kind == "topic"})
    return {
        "in_force": {
            "topics": {n: not topic_refused(records, n, now) for n in names},
            "frequency": frequency(records, now).value,
            "paused_until": paused_until(records, now),
        },
        "history": [
            {
                "preference_id": r.preference_id,
                "kind": r.kind,
                "name": r.name or None,
                "value": r.value,
                "until": r.until,
                "recorded_at": r.recorded_at,
                "source": r.source,
                "evidence": r.evidence,
            }
            for r in rows
        ],
    }
