"""Consent in force: one rule, read for one person in memory and for everyone in SQL.

A consent record (table ``consents``) says that a person granted or refused one *purpose*
(:data:`PURPOSES`) on one *channel* (:data:`CHANNELS`; ``any`` means every channel) at
``recorded_at`` (naive UTC), with its ``source`` and ``evidence`` (a form, a message id, a
signed link). Records are never updated: the table is the history.

The rule. For a person, a purpose and a channel, the record *in force* at ``now`` is, among the
person's records of that purpose recorded at or before ``now`` whose channel is the channel asked
or ``any``, the most recent; at equal times a channel-specific record beats ``any``, then the
greatest ``consent_id``. Asking about channel ``any`` reads ``any`` records only. The most recent
wins rather than the most specific so that an "unsubscribe from everything" written after an
e-mail opt-in stops the e-mails, and an e-mail opt-in written after it re-admits e-mail only.

Two readings of the record in force:

- *granted*: it says granted (no record: not granted). What the segment condition ``consent``
  matches, so that a campaign can target explicit opt-ins.
- *refused*: it says refused (no record: not refused). What every stage enforces:

  ============================  ==============================================================
  refused                       effect
  ============================  ==============================================================
  marketing on a channel        no marketing decision on that channel (suppressed, reason
                                :data:`OPTED_OUT_MARKETING`); no assignment to an experiment on
                                that channel
  personalization (channel)     decisions on that channel are neutral (default variant,
                                fallbacks, popular products)
  profiling (``any``)           no derived metrics (RFM, CLV, engagement...), none kept from
                                before; left out of clustering
  ============================  ==============================================================

:func:`in_force`, :func:`granted` and :func:`refused` apply the rule to records in memory;
:func:`granted_people` and :func:`refused_people` are the same rule as one ``SELECT person_id``
that runs on DuckDB and PostgreSQL. :func:`record_consents` and :func:`consents_of` are the
services behind ``POST /v1/consents`` and ``GET /v1/people/{id}/consents``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import InvalidInput
from surmesure.store import schema

PURPOSES = ("marketing", "personalization", "profiling", "analytics")
CHANNELS = ("email", "sms", "phone", "paper", "web", "any")
ANY = "any"
OPTED_OUT_MARKETING = "opted_out_marketing"
"""The reason a marketing decision is suppressed for a person who refused its channel."""


@dataclass(frozen=True, slots=True)
class Record:
    """One consent record as the rule reads it."""

    purpose: str
    channel: str
    granted: bool
    recorded_at: datetime
    consent_id: str


def _order(record: Record) -> tuple[datetime, bool, str]:
    return (record.recorded_at, record.channel != ANY, record.consent_id)


def in_force(records: Iterable[Record], purpose: str, channel: str, now: datetime) -> Record | None:
    """The record in force for ``purpose`` on ``channel`` at ``now`` (see the module), or
    ``None`` when there is none."""
    channels = {channel, ANY}
    return max(
        (
            r
            for r in records
            if r.purpose == purpose and r.channel in channels and r.recorded_at <= now
        ),
        key=_order,
        default=None,
    )


def granted(records: Iterable[Record], purpose: str, channel: str, now: datetime) -> bool:
    """The record in force grants ``purpose`` on ``channel`` (no record: ``False``)."""
    found = in_force(records, purpose, channel, now)
    return found is not None and found.granted


def refused(records: Iterable[Record], purpose: str, channel: str, now: datetime) -> bool:
    """The record in force refuses ``purpose`` on ``channel`` (no record: ``False``)."""
    found = in_force(records, purpose, channel, now)
    return found is not None and not found.granted


# -- SQL: the same rule for everyone -------------------------------------------------------------


def _latest(purpose: str, channel: str, now: Any, scope: Any = None) -> Any:
    """Per person, the record in force: ``(person_id, granted)``. ``now`` is a datetime or a
    SQL expression; ``scope`` an optional selectable of ``person_id`` to restrict to."""
    k = schema.consents
    rn = sa.func.row_number().over(
        partition_by=k.c.person_id,
        order_by=(
            k.c.recorded_at.desc(),
            sa.case((k.c.channel == ANY, 0), else_=1).desc(),
            k.c.consent_id.desc(),
        ),
    )
    where = [
        k.c.person_id.is_not(None),
        k.c.purpose == purpose,
        k.c.channel.in_(sorted({channel, ANY})),
        k.c.recorded_at <= now,
    ]
    if scope is not None:
        where.append(k.c.person_id.in_(scope))
    return sa.select(k.c.person_id, k.c.granted, rn.label("rn")).where(*where).subquery()


def granted_people(purpose: str, channel: str, now: Any, scope: Any = None) -> sa.Select[Any]:
    """``SELECT person_id`` of the persons whose record in force grants ``purpose`` on
    ``channel`` at ``now``: :func:`granted` for everyone."""
    latest = _latest(purpose, channel, now, scope)
    return sa.select(latest.c.person_id).where(latest.c.rn == 1, latest.c.granted)


def refused_people(purpose: str, channel: str, now: Any, scope: Any = None) -> sa.Select[Any]:
    """``SELECT person_id`` of the persons whose record in force refuses ``purpose`` on
    ``channel`` at ``now``: :func:`refused` for everyone."""
    latest = _latest(purpose, channel, now, scope)
    return sa.select(latest.c.person_id).where(latest.c.rn == 1, sa.not_(latest.c.granted))


def refused_ids(conn: Connection, purpose: str, channel: str, now: datetime) -> set[int]:
    """The ids :func:`refused_people` selects, read."""
    return {int(r[0]) for r in conn.execute(refused_people(purpose, channel, now))}


def records_of(
    conn: Connection, person_id: int, purposes: Sequence[str] | None = None
) -> tuple[Record, ...]:
    """Every consent record of ``person_id`` (of ``purposes``, default all), any time."""
    k = schema.consents
    query = sa.select(k.c.purpose, k.c.channel, k.c.granted, k.c.recorded_at, k.c.consent_id).where(
        k.c.person_id == person_id
    )
    if purposes is not None:
        query = query.where(k.c.purpose.in_(list(purposes)))
    return tuple(
        Record(str(r[0]), str(r[1]), bool(r[2]), r[3], str(r[4])) for r in conn.execute(query)
    )


# -- recording and reading one person's consents ---------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check(purpose: str, channel: str, field: str = "") -> None:
    """Refuse a purpose or channel outside :data:`PURPOSES` / :data:`CHANNELS`."""
    prefix = f"{field}." if field else ""
    if purpose not in PURPOSES:
        raise InvalidInput(
            f"Purpose {purpose!r} is not known.",
            field=f"{prefix}purpose",
            hint="use one of: " + ", ".join(PURPOSES),
        )
    if channel not in CHANNELS:
        raise InvalidInput(
            f"Channel {channel!r} is not known.",
            field=f"{prefix}channel",
            hint="use one of: " + ", ".join(CHANNELS),
        )


def new_consent_id() -> str:
    return uuid.uuid4().hex


def consent_row(
    person_id: int,
    purpose: str,
    channel: str,
    granted: bool,
    *,
    source: str,
    evidence: str | None,
    recorded_at: datetime,
    consent_id: str | None = None,
    node_id: int | None = None,
) -> dict[str, Any]:
    """One row of ``consents``, checked (see :func:`check`)."""
    check(purpose, channel)
    return {
        "consent_id": consent_id or new_consent_id(),
        "person_id": person_id,
        "node_id": person_id if node_id is None else node_id,
        "purpose": purpose,
        "channel": channel,
        "granted": granted,
        "recorded_at": recorded_at,
        "source": source,
        "evidence": None if evidence is None else evidence[:512],
    }


def record_consents(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows made by :func:`consent_row`; how many."""
    if rows:
        conn.execute(schema.consents.insert(), list(rows))
    return len(rows)


def record_for(
    conn: Connection,
    ref: str,
    changes: Sequence[tuple[str, str, bool]],
    *,
    source: str,
    evidence: str | None,
    recorded_at: datetime | None = None,
) -> dict[str, Any]:
    """Record ``changes`` (purpose, channel, granted) for the person ``ref`` names (an absorbed
    id records for the person it was merged into), all at ``recorded_at`` (default now) with one
    evidence. Returns ``{"person_id", "recorded": [records]}``."""
    from surmesure.unify.profile import find_person

    if not changes:
        raise InvalidInput(
            "No consent to record.", field="consents", hint="give at least one purpose"
        )
    for i, (purpose, channel, _) in enumerate(changes):
        check(purpose, channel, f"consents[{i}]")
    person = find_person(conn, ref)
    at = recorded_at or _utcnow()
    rows = [
        consent_row(person.person_id, p, c, g, source=source, evidence=evidence, recorded_at=at)
        for p, c, g in changes
    ]
    record_consents(conn, rows)
    return {"person_id": person.person_id, "recorded": rows}


def _describe(row: Any) -> dict[str, Any]:
    return {
        "consent_id": row.consent_id,
        "purpose": row.purpose,
        "channel": row.channel,
        "granted": bool(row.granted),
        "recorded_at": row.recorded_at,
        "source": row.source,
        "evidence": row.evidence,
    }


def consents_of(conn: Connection, ref: str, now: datetime | None = None) -> dict[str, Any]:
    """A person's consents: ``{"person_id", "at", "in_force", "history"}``. ``in_force`` holds,
    for each purpose and channel the person has records for, the record in force at ``now``
    (by the rule: an ``any`` record counts for every channel); ``history`` every record, oldest
    first (then by purpose and channel). :class:`~surmesure.errors.NotFound` when nobody is
    known by ``ref``."""
    from surmesure.unify.profile import find_person  # unify reads consents through here

    at = now or _utcnow()
    person = find_person(conn, ref)
    k = schema.consents
    rows = conn.execute(
        sa.select(k)
        .where(k.c.person_id == person.person_id)
        .order_by(k.c.recorded_at, k.c.purpose, k.c.channel, k.c.consent_id)
    ).all()
    by_id = {str(r.consent_id): r for r in rows}
    records = [
        Record(str(r.purpose), str(r.channel), bool(r.granted), r.recorded_at, str(r.consent_id))
        for r in rows
    ]
    pairs = sorted({(r.purpose, r.channel) for r in records})
    current = []
    for purpose, channel in pairs:
        found = in_force(records, purpose, channel, at)
        if found is not None:
            current.append(
                {
                    "purpose": purpose,
                    "channel": channel,
                    "granted": found.granted,
                    "record": _describe(by_id[found.consent_id]),
                }
            )
    return {
        "person_id": person.person_id,
        "at": at,
        "in_force": current,
        "history": [_describe(r) for r in rows],
    }
