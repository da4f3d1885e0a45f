"""The dispatch stage's tables: the changes outbox collect writes in its transaction, and
each subscriber's cursor and failures. Part of :mod:`surmesure.store.schema`, which
re-exports them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import metadata

change_id_seq = sa.Sequence("change_id_seq", metadata=metadata)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("change_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False, comment="event, order, consent, erasure"),
    sa.Column("person_id", sa.BigInteger, nullable=True),
    sa.Column("detail", sa.String(64), nullable=True, comment="an event's type, a consent's"),
    sa.Column("ref", sa.String(256), nullable=True, comment="the messageId or order id"),
    sa.Column("stored_at", sa.DateTime, nullable=False),
    sa.Column("name", sa.String(256), nullable=True, comment="an event's name"),
    info={"personal": "person_id"},
    comment="The outbox: each change collect stored, written in the same transaction, in order.",
)

change_cursors = sa.Table(
    "change_cursors",
    metadata,
    sa.Column("subscriber", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False, comment="last change_id delivered"),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="How far each subscriber of the outbox has been delivered.",
)

change_failures = sa.Table(
    "change_failures",
    metadata,
    sa.Column("subscriber", sa.String(64), primary_key=True),
    sa.Column("change_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.String(512), nullable=False, comment="the last error, one line"),
    sa.Column("failed_at", sa.DateTime, nullable=False),
    sa.Column("retry_at", sa.DateTime, nullable=True, comment="empty once given up"),
    info={"personal": None},
    comment="Changes a subscriber failed on: retried with a growing delay, then given up.",
)

TABLES = (
    changes,
    change_cursors,
    change_failures,
)
"""The tables this stage owns: no other stage's module defines them."""
