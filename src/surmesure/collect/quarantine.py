"""The quarantine: records refused at collection, kept with the reason until replayed.

A quarantined import record holds its file (``source_name``), its place (``location``, "row N"
for the 1-based data row), the first field at fault with its value, the reason (Pydantic's
message, or the check that refused it) and the record exactly as read from the file
(``payload``, keyed by the file's own column names). An order line's payload also carries
``_line_no``, its position in its order, so that a replayed line takes its own place; a row
that could not be read as a record at all carries ``_malformed`` and cannot be replayed; nor
can a record refused because it carries an erased identifier, whose payload is only
``_erased``, the kinds of identifiers that matched (see :mod:`surmesure.protect.suppression`).

What a store cannot keep is kept as it can be (:func:`surmesure.collect.bounds.storable`): a
NUL character as U+FFFD, an integer beyond 64 bits as its text, what lies too deep as a note.

Quarantining is idempotent: the same record refused again at the same place (a re-import of
the file, from its folder or a copy of it elsewhere) is not stored twice.

At rest, a record's ``value`` and ``payload`` are sealed under a key of its own, and the
payload is recognised by a keyed hash (:mod:`surmesure.protect.quarantined`); what is read
here is opened in batches.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.collect import bounds
from surmesure.errors import NotFound
from surmesure.protect import quarantined
from surmesure.store import schema
from surmesure.store.engine import Store

MALFORMED = "_malformed"
LINE_NO = "_line_no"
ERASED = "_erased"
RESERVED = (MALFORMED, LINE_NO, ERASED)
UNREPLAYABLE = (MALFORMED, ERASED)

q = schema.quarantine
LOOKUP_CHUNK = 5_000


@dataclass(frozen=True)
class Item:
    """One record to quarantine."""

    location: str
    field: str | None
    value: str | None
    reason: str
    payload: dict[str, Any]


def payload_json(payload: dict[str, Any]) -> str:
    """The stored JSON text of a payload (keys sorted, dates as ISO 8601)."""
    return orjson.dumps(bounds.storable(payload), default=str, option=orjson.OPT_SORT_KEYS).decode()


def add(
    store: Store,
    conn: Connection,
    items: list[Item],
    *,
    run_id: int | None,
    origin: str,
    kind: str,
    source_name: str,
    now: datetime,
) -> int:
    """Store ``items`` as open quarantine records, skipping those already stored for this
    kind (same location and payload, whatever file they came from: a copy of a file moved to
    another folder holds the same records). Returns how many were new."""
    if not items:
        return 0
    locations = sorted({clean(i.location) or "" for i in items})
    stored: set[tuple[str, str]] = set()
    for start in range(0, len(locations), LOOKUP_CHUNK):
        chunk = locations[start : start + LOOKUP_CHUNK]
        stored.update(
            (str(location), str(digest))
            for location, digest in conn.execute(
                sa.select(q.c.location, q.c.digest).where(
                    q.c.kind == kind, q.c.origin == origin, q.c.location.in_(chunk)
                )
            )
        )
    fresh: list[Item] = []
    texts: list[str] = []
    digests: list[str] = []
    for item in items:
        text = payload_json(item.payload)
        key = (clean(item.location) or "", quarantined.digest(store, text))
        if key not in stored:
            stored.add(key)
            fresh.append(item)
            texts.append(text)
            digests.append(key[1])
    if not fresh:
        return 0
    ids = store.next_ids(conn, schema.quarantine_id_seq, len(fresh))
    count = len(fresh)
    sealed = quarantined.seal(conn, ids, [clean(i.value) for i in fresh], texts, now=now)
    quarantined.mark(conn, ids, texts, new=True)
    table = pa.table(
        {
            "quarantine_id": pa.array(ids, pa.int64()),
            "run_id": pa.array([run_id] * count, pa.int64()),
            "origin": [origin] * count,
            "kind": [kind] * count,
            "source_name": [source_name] * count,
            "location": [clean(i.location) for i in fresh],
            "field": pa.array([clean(i.field) for i in fresh], pa.string()),
            "reason": [clean(i.reason) for i in fresh],
            "status": ["open"] * count,
            "created_at": pa.array([now] * count, pa.timestamp("us")),
            "sealed": pa.array(sealed, pa.binary()),
            "digest": pa.array(digests, pa.string()),
        }
    )
    return store.bulk_insert(conn, q, table)


def clean(text: str | None) -> str | None:
    return None if text is None else bounds.clean_text(text)


def by_reason(items: list[Item]) -> dict[str, int]:
    """Counts of ``items`` by reason, most frequent first."""
    return dict(Counter(i.reason for i in items).most_common())


def _filters(kind: str | None, status: str | None, run_id: int | None) -> list[Any]:
    where = []
    if kind is not None:
        where.append(q.c.kind == kind)
    if status is not None:
        where.append(q.c.status == status)
    if run_id is not None:
        where.append(q.c.run_id == run_id)
    return where


def summary(
    store: Store,
    *,
    kind: str | None = None,
    status: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """Counts by kind, field and reason (most frequent first) and the most recent records."""
    where = _filters(kind, status, None)
    with store.connect() as conn:
        counts = conn.execute(
            sa.select(q.c.kind, q.c.field, q.c.reason, q.c.status, sa.func.count().label("n"))
            .where(*where)
            .group_by(q.c.kind, q.c.field, q.c.reason, q.c.status)
            .order_by(sa.func.count().desc(), q.c.kind, q.c.reason)
        ).fetchall()
        recent = [
            _plain(r._mapping)
            for r in conn.execute(
                sa.select(*(c for c in q.c if c.name not in ("payload", "digest", "replayed_at")))
                .where(*where)
                .order_by(q.c.quarantine_id.desc())
                .limit(limit)
            )
        ]
        quarantined.open_records(conn, recent)
    return {
        "total": sum(int(r.n) for r in counts),
        "by_reason": [
            {
                "kind": r.kind,
                "field": r.field,
                "reason": r.reason,
                "status": r.status,
                "count": int(r.n),
            }
            for r in counts
        ],
        "recent": [{k: v for k, v in r.items() if k != "payload"} for r in recent],
    }


def _plain(row: Any) -> dict[str, Any]:
    """A result row as a dict with plain ``str`` keys (column names are a ``str`` subclass)."""
    return {str(k): v for k, v in row.items()}


def get(store: Store, quarantine_id: int) -> dict[str, Any]:
    """One quarantined record, whole; :class:`NotFound` when there is none with that id."""
    with store.connect() as conn:
        found = next(iter(quarantined.batches(conn, q.c.quarantine_id == quarantine_id)), [])
    if not found:
        raise NotFound(
            f"There is no quarantined record {quarantine_id}.",
            hint="list them with `surmesure quarantine list`",
            field="ID",
        )
    record = {k: v for k, v in found[0].items() if k != "digest"}
    if isinstance(record["payload"], str):
        record["payload"] = orjson.loads(record["payload"])
    return record
