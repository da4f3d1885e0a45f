"""The outbox: what collect (or a derive run, an unmerge) stored, appended in the same
transaction as the data.

A change says what happened to whom: ``kind`` (``event``: a Segment message was stored, its
type in ``detail``, its ``messageId`` in ``ref`` and its ``name`` (a track call's event,
``Order Completed``; NULL in changes stored before names were kept); ``order``: an order or a
return, its id in ``ref``; ``consent``: a consent choice was recorded, its purpose in
``detail``; ``erasure``: a person was erased; ``profile``: an import named the person, its kind
in ``detail``; ``preference``: a topic, frequency or pause choice was recorded; ``segment``: a
segment refresh brought the person in or out, the segment in ``detail``; ``identity``: a merge
was undone, one change for each side, ``detail`` ``unmerge`` and the merge id in ``ref``;
``metrics``: a derive run stored the metrics of many people, one change naming nobody, the
run's time in ``ref``), the ``person_id`` concerned (the person now, after merges) and
``stored_at``, the time it was stored (naive UTC). Changes are read in ``change_id`` order,
which is the order their transactions appended them in (:mod:`.gate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.dispatch import gate
from surmesure.store import backends, schema
from surmesure.store.engine import Store

EVENT = "event"
ORDER = "order"
CONSENT = "consent"
ERASURE = "erasure"
PROFILE = "profile"
PREFERENCE = "preference"
SEGMENT = "segment"
IDENTITY = "identity"
METRICS = "metrics"


class Change(NamedTuple):
    """One row of the outbox (a tuple: a round builds thousands of them)."""

    change_id: int
    kind: str
    person_id: int | None
    detail: str | None
    ref: str | None
    at: datetime
    name: str | None = None

    def to_list(self) -> list[object]:
        return [*self[:5], self.at, self.name]

    @classmethod
    def from_list(cls, row: Sequence[object]) -> Change:
        """The change of a :meth:`to_list` (one of six items, written before names were
        kept, has none)."""
        change_id, kind, person_id, detail, ref, at, *rest = row
        assert isinstance(change_id, int) and isinstance(kind, str)
        assert isinstance(at, datetime)
        name = rest[0] if rest else None
        return cls(change_id, kind, person_id, detail, ref, at, name)  # type: ignore[arg-type]


def append(
    store: Store,
    conn: Connection,
    kind: str,
    person_ids: Sequence[int | None],
    *,
    at: datetime,
    details: Sequence[str | None] | None = None,
    refs: Sequence[str | None] | None = None,
    names: Sequence[str | None] | None = None,
) -> int:
    """Append one change of ``kind`` per person of ``person_ids`` (with its ``details``,
    ``refs`` and ``names``, when given) inside the caller's transaction ``conn``; returns how
    many."""
    count = len(person_ids)
    if count == 0:
        return 0
    gate.hold(store, conn)
    ids = store.next_ids(conn, schema.change_id_seq, count)
    rows = pa.table(
        {
            "change_id": pa.array(ids, pa.int64()),
            "kind": pa.array([kind] * count, pa.string()),
            "person_id": pa.array(person_ids, pa.int64()),
            "detail": pa.array(details if details is not None else [None] * count, pa.string()),
            "ref": pa.array(refs if refs is not None else [None] * count, pa.string()),
            "stored_at": pa.array([at] * count, pa.timestamp("us")),
            "name": pa.array(names if names is not None else [None] * count, pa.string()),
        }
    )
    return store.bulk_insert(conn, schema.changes, rows, on_conflict="error")


_READ = (
    "SELECT change_id, kind, person_id, detail, ref, stored_at, name FROM changes "
    "WHERE change_id > :after ORDER BY change_id LIMIT :limit"
)


def read(conn: Connection, after: int, limit: int) -> list[Change]:
    """Up to ``limit`` changes after ``after``, in order."""
    # rows straight from the driver where it can (a third of the time on DuckDB), by a
    # statement compiled once
    rows = backends.of(conn).run(conn, _READ, {"after": after, "limit": limit})
    return list(map(change_of_row, rows))


change_of_row = partial(tuple.__new__, Change)
"""A :class:`Change` of a row of :data:`_READ` (its seven columns, in order), made in C:
``Change._make`` runs a Python frame per row, a tenth of a round's time."""


def read_ids(conn: Connection, ids: Sequence[int]) -> list[Change]:
    """The changes ``ids`` that are still stored, in order."""
    query = _select().where(schema.changes.c.change_id.in_(list(ids)))
    return [Change(*r) for r in conn.execute(query)]


def _select() -> sa.Select[Any]:
    c = schema.changes.c
    return sa.select(
        c.change_id, c.kind, c.person_id, c.detail, c.ref, c.stored_at, c.name
    ).order_by(c.change_id)


def prune(conn: Connection, upto: int) -> int:
    """Delete the changes up to ``upto`` (every subscriber has them), but those a subscriber
    failed on, kept for its retries; returns how many went."""
    c, f = schema.changes.c, schema.change_failures.c
    gone = conn.execute(
        schema.changes.delete().where(
            c.change_id <= upto, c.change_id.not_in(sa.select(f.change_id))
        )
    )
    return int(gone.rowcount or 0)


def last_id(conn: Connection) -> int:
    """The highest change id stored (0 when none)."""
    found = conn.execute(sa.select(sa.func.max(schema.changes.c.change_id))).scalar()
    return int(found or 0)
