"""The audit log: every read of personal data and every administrative change.

One row per act: who (``key:<name>`` for an API key, ``cli:<user>`` for a command), what (an
action name such as ``person.show``, ``why``, ``segments``, ``key.create``, ``person.erase``),
when (naive UTC), about whom (an opaque person id, or none) and a ``detail`` mapping of what was
asked. A detail never holds identifier values: a person named by ``email:...`` is recorded by
the id found, and free text is left out. An erasure keeps the rows, detached from the person.
"""

from __future__ import annotations

import getpass
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.store import schema
from surmesure.store.engine import Store


def cli_actor() -> str:
    """The actor of a command: the operating-system user who ran it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli:unknown"


def record_in(
    conn: Connection,
    actor: str,
    action: str,
    *,
    person_id: int | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Record one act in the caller's transaction (an erasure and its record commit together)."""
    conn.execute(
        schema.audit_log.insert().values(
            audit_id=uuid.uuid4().hex,
            occurred_at=now or utcnow(),
            actor=actor[:160],
            action=action,
            person_id=person_id,
            detail=detail or None,
        )
    )


def record(
    store: Store,
    actor: str,
    action: str,
    *,
    person_id: int | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Record one act in a transaction of its own."""
    with store.begin() as conn:
        record_in(conn, actor, action, person_id=person_id, detail=detail, now=now)


def entries(
    store: Store,
    *,
    person_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The latest acts first, filtered by person, actor and action."""
    a = schema.audit_log
    query = sa.select(a).order_by(a.c.occurred_at.desc(), a.c.audit_id).limit(limit)
    if person_id is not None:
        query = query.where(a.c.person_id == person_id)
    if actor is not None:
        query = query.where(a.c.actor == actor)
    if action is not None:
        query = query.where(a.c.action == action)
    with store.connect() as conn:
        return [{str(k): v for k, v in r.items()} for r in conn.execute(query).mappings()]
