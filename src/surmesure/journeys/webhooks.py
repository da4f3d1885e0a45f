"""Webhook steps: a signed POST of what happened, through the outbox.

A webhook step calls nobody while the person moves: it writes a row of ``messages`` (campaign
``j_<journey>_<step>``, channel ``webhook``, step = the entry number, its id the keyed hash of
that key, as a send's) in the transaction that moves the person (:func:`plan`). A crash between
that commit and the call loses nothing, and a batch replayed after a crash writes no row twice.

:func:`deliver` POSTs the due rows: right after the commit that planned them (the dispatcher's
or a worker's), and again in every worker round for those left. A row's life: ``planned`` ->
``sending`` (claimed, one more attempt, leased for :data:`LEASE`: a worker killed while it calls
leaves the row to be claimed again when the lease ends) -> ``sent``, or ``planned`` again after
30 s, 1, 2, 4, ... minutes on a network error, a 5xx or a 429 until the step's ``retries`` are
spent (then ``failed``), or ``failed`` at once on another 4xx. At least once, not exactly once:
the receiver uses ``journey``, ``step``, ``person_id`` and ``entry`` as its idempotency key.

The body is the JSON ``{"journey", "step", "person_id", "entry"}``; the header
``X-Surmesure-Signature: sha256=<hex>`` is the HMAC-SHA256 of the body under the secret key, so
the receiver can check it came from here.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import httpx
import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.published import Versions, catalog
from surmesure.journeys.sends import campaign_key, message_key, outbox_rows
from surmesure.journeys.steps import WebhookStep
from surmesure.store import schema
from surmesure.store.among import among_texts
from surmesure.store.engine import Store
from surmesure.store.update import as_arrow

log = logging.getLogger("surmesure.journeys")

CHANNEL = "webhook"
LEASE = timedelta(minutes=5)
"""How long a claimed row is left to the worker calling it before another may claim it."""
FIRST_WAIT = timedelta(seconds=30)
"""The wait before the first retry; each next one doubles it."""
CLAIM = 200
"""Most rows claimed at a time."""


def signature(body: bytes, key: str) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def plan(
    store: Store,
    conn: Connection,
    journey: JourneyDefinition,
    version: int,
    step: str,
    people: tuple[np.ndarray, np.ndarray],
    now: datetime,
) -> list[str]:
    """The outbox rows of webhook step ``step`` for ``people`` (ids, entries), in the caller's
    transaction; the ids of those that were new."""
    ids, entries = people
    n = int(ids.size)
    channel = np.full(n, CHANNEL, dtype=object)
    status = np.full(n, "planned", dtype=object)
    key = message_key(store.settings.secret_key)
    rows = outbox_rows(
        key, campaign_key(journey.name, step), version, ids, entries, channel, status, now
    )
    m = schema.messages
    return sorted(store.insert_new(conn, m, as_arrow(m, rows), "message_id"))


def deliver(
    store: Store,
    now: datetime,
    *,
    ids: Sequence[str] | None = None,
    versions: Versions | None = None,
    timeout: float = 5.0,
) -> dict[str, int]:
    """POST the due webhook rows (only ``ids`` when given), a claim at a time, and record what
    became of each (see the module): ``{outcome: count}``."""
    versions = versions or Versions()
    counts: dict[str, int] = {}
    tried: set[str] = set()
    campaigns = None
    if ids is None:  # read by campaign (indexed), those of the journeys' webhook steps
        with store.connect() as conn:
            campaigns = _campaigns(conn, versions)
        if not campaigns:
            return counts
    while True:
        with store.begin() as conn:
            rows = claim(store, conn, now, ids, tried, campaigns)
            steps = _steps(conn, versions, {(r.campaign, r.version) for r in rows})
        if not rows:
            return counts
        done: list[tuple[str, str, str | None, int]] = []
        for row in rows:
            tried.add(row.message_id)
            found = steps.get((row.campaign, row.version))
            detail: str | None
            if found is None:  # no such step in the journey's version: nothing to call
                outcome, detail = "failed", "unknown step"
            else:
                journey, step = found
                body = {
                    "journey": journey,
                    "step": step.id,
                    "person_id": row.person_id,
                    "entry": row.step,
                }
                outcome, detail = call(
                    step.webhook.url,
                    body,
                    secret_key=store.settings.secret_key,
                    timeout=timeout,
                )
                if outcome == "retry" and row.attempts > step.webhook.retries:
                    outcome = "failed"
            done.append((row.message_id, outcome, detail, row.attempts))
            counts[outcome] = counts.get(outcome, 0) + 1
        with store.begin() as conn:
            _mark(conn, done, now)


def call(
    url: str, payload: Mapping[str, object], *, secret_key: str, timeout: float = 5.0
) -> tuple[str, str | None]:
    """POST ``payload`` to ``url``, signed with ``secret_key``, once: ``("sent" | "retry" |
    "failed", detail)``."""
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Surmesure-Signature": signature(body, secret_key),
    }
    try:
        answer = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        log.warning("webhook %s failed: %s", url, type(exc).__name__)
        return "retry", type(exc).__name__
    if answer.is_success:
        return "sent", None
    detail = f"HTTP {answer.status_code}"
    log.warning("webhook %s answered %s", url, answer.status_code)
    if answer.status_code >= 500 or answer.status_code == 429:
        return "retry", detail
    return "failed", detail


class _Claimed(NamedTuple):
    message_id: str
    campaign: str
    version: int
    person_id: int | None
    step: int
    attempts: int
    """Counting the one under way."""


def claim(
    store: Store,
    conn: Connection,
    now: datetime,
    ids: Sequence[str] | None,
    tried: set[str],
    campaigns: Sequence[str] | None = None,
) -> list[_Claimed]:
    """Up to :data:`CLAIM` due rows (planned, or sending past their lease; among ``ids``, of
    ``campaigns``, when given), marked sending with one more attempt and leased, in the
    caller's transaction; none of ``tried``."""
    m = schema.messages
    query = (
        sa.select(m.c.message_id, m.c.campaign, m.c.version, m.c.person_id, m.c.step, m.c.attempts)
        .where(
            m.c.channel == CHANNEL,
            m.c.status.in_(("planned", "sending")),
            m.c.next_attempt_at <= now,
        )
        .order_by(m.c.next_attempt_at)
        .limit(CLAIM)
    )
    if ids is not None:
        query = query.where(among_texts(m.c.message_id, list(ids)))
    if campaigns is not None:
        query = query.where(m.c.campaign.in_(list(campaigns)))
    if tried:
        query = query.where(~among_texts(m.c.message_id, sorted(tried)))
    rows = list(conn.execute(store.backend.lock_rows(query, skip_locked=True)))
    if rows:
        conn.execute(
            m.update()
            .where(among_texts(m.c.message_id, [r.message_id for r in rows]))
            .values(
                status="sending",
                attempts=m.c.attempts + 1,
                next_attempt_at=now + LEASE,
                updated_at=now,
            )
        )
    return [_Claimed(str(r[0]), str(r[1]), int(r[2]), r[3], int(r[4]), int(r[5]) + 1) for r in rows]


def _campaigns(conn: Connection, versions: Versions) -> list[str]:
    """The outbox campaigns of every webhook step of every version of every journey."""
    return sorted(
        {
            campaign_key(name, step.id)
            for name, (_, latest) in catalog(conn).items()
            for version in range(1, latest + 1)
            for step in versions.get(conn, name, version).steps
            if isinstance(step, WebhookStep)
        }
    )


def _steps(
    conn: Connection, versions: Versions, campaigns: set[tuple[str, int]]
) -> dict[tuple[str, int], tuple[str, WebhookStep]]:
    """``(campaign, version) -> (journey, webhook step)`` for the claimed campaigns."""
    out: dict[tuple[str, int], tuple[str, WebhookStep]] = {}
    if not campaigns:
        return out
    names = catalog(conn)
    for campaign, version in sorted(campaigns):
        for name in names:
            if not campaign.startswith(f"j_{name}_"):
                continue
            for step in versions.get(conn, name, version).steps:
                if isinstance(step, WebhookStep) and campaign_key(name, step.id) == campaign:
                    out[(campaign, version)] = (name, step)
    return out


def _mark(conn: Connection, done: list[tuple[str, str, str | None, int]], now: datetime) -> None:
    m = schema.messages
    for message_id, outcome, detail, attempts in done:
        values: dict[str, object]
        if outcome == "sent":
            values = {"status": "sent", "sent_at": now, "reason": None}
        elif outcome == "retry":
            wait = FIRST_WAIT * 2 ** (attempts - 1)
            values = {"status": "planned", "next_attempt_at": now + wait, "reason": detail}
        else:
            values = {"status": "failed", "reason": detail}
        conn.execute(
            m.update().where(m.c.message_id == message_id).values(updated_at=now, **values)
        )
