"""The quarantine at rest: each refused record sealed under a key of its own.

Contract:

- A quarantined record's ``value`` and ``payload`` are held in its ``sealed`` column as one
  JSON object (``{"value": ..., "payload": ...}``) sealed (:mod:`surmesure.protect.crypto`)
  under the data key of node ``-quarantine_id``: a key per record, made with it, never a
  person's (their nodes are positive). The plain ``value`` and ``payload`` are NULL.
- ``digest`` is a keyed hash of the payload's stored JSON text (the blind index of
  :mod:`surmesure.protect.blind`, kind :data:`KIND`): a record refused again at the same place
  is recognised without opening anything, and without the key nobody can test a guessed record
  against it.
- Readers open records in batches of :data:`BATCH` (:func:`batches`, :func:`open_records`);
  the keys read are not kept in memory afterwards.
- Each record is marked (:func:`mark`) with a keyed hash, cut to 64 bits, of every value it
  holds that an identifier could be matched to (:func:`surmesure.protect.scope.payload_tokens`):
  an erasure opens only the records marked with one of the person's identifiers
  (:func:`marked`), however large the quarantine, and matches them exactly as before.
- Whatever removes a record (erasure, retention) or rewrites it without its former content
  (a replayed record found erased) destroys its key first (:func:`destroy`, :func:`delete`,
  :func:`reseal`): a sealed copy lingering in a file's free blocks, a WAL or a backup no longer
  opens anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.protect import atrest, blind, crypto
from surmesure.store import schema
from surmesure.store.engine import Store

q = schema.quarantine
m = schema.quarantine_marks
KIND = "quarantine"
MARK_KIND = "quarantine mark"
BATCH = 5_000
"""Records opened, or keys destroyed, per round trip."""


def node(quarantine_id: int) -> int:
    """The key node of the record ``quarantine_id``."""
    return -int(quarantine_id)


def digest(store: Store, payload_text: str) -> str:
    """The keyed hash of a payload's stored JSON text (under ``store``'s index key)."""
    return blind.index(store, KIND, payload_text)


def seal(
    conn: Connection,
    ids: Sequence[int],
    values: Sequence[str | None],
    payload_texts: Sequence[str],
    *,
    now: datetime,
) -> list[bytes | None]:
    """The sealed value and payload (JSON text) of each record, under its own key (made in the
    caller's transaction), in one batch."""
    texts: list[str | None] = [
        atrest.joined({"value": atrest.dumps(v), "payload": p})
        for v, p in zip(values, payload_texts, strict=True)
    ]
    nodes: list[int | None] = [node(i) for i in ids]
    sealed = atrest.seal_texts(conn, nodes, texts, now=now)
    atrest.keyring(conn).forget(node(i) for i in ids)
    return sealed


def marks_of(store: Store, values: Iterable[str]) -> set[str]:
    """The marks of ``values`` in ``store`` (see the module)."""
    key = blind.index_key(store)
    return {crypto.blind_index(key, MARK_KIND, v)[:16] for v in values}


def mark(
    conn: Connection, ids: Sequence[int], payload_texts: Sequence[str], *, new: bool = False
) -> None:
    """Mark the records ``ids`` with the values their payloads (JSON text) hold, replacing
    any marks they had; ``new``: records just made, which have none (a plain insert)."""
    from surmesure.protect.scope import payload_tokens

    store = Store.of(conn)
    region = store.settings.default_country
    pairs = {
        (found, int(i))
        for i, text in zip(ids, payload_texts, strict=True)
        for found in marks_of(store, payload_tokens(orjson.loads(text), region))
    }
    if not new:
        unmark(conn, ids)
    if pairs:
        rows = sorted(pairs)
        table = pa.table(
            {
                "mark": pa.array([r[0] for r in rows], pa.string()),
                "quarantine_id": pa.array([r[1] for r in rows], pa.int64()),
            }
        )
        store.bulk_insert(conn, m, table, on_conflict="error" if new else "nothing")


def unmark(conn: Connection, ids: Iterable[int]) -> None:
    """Remove the marks of the records ``ids``."""
    chosen = sorted({int(i) for i in ids})
    for start in range(0, len(chosen), BATCH):
        conn.execute(m.delete().where(m.c.quarantine_id.in_(chosen[start : start + BATCH])))


def marked(conn: Connection, values: Iterable[str]) -> list[int]:
    """The records marked with one of ``values``, by increasing id."""
    wanted = sorted(marks_of(Store.of(conn), values))
    if not wanted:
        return []
    query = sa.select(m.c.quarantine_id).where(m.c.mark.in_(wanted)).distinct()
    return sorted(int(i) for i in conn.execute(query).scalars())


def open_records(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Put back, in place, the ``value`` and ``payload`` of quarantine rows read with
    ``quarantine_id`` and ``sealed`` (``sealed`` is dropped). A record whose key is gone keeps
    ``payload`` ``None``."""
    atrest.open_rows(conn, q, rows)
    atrest.keyring(conn).forget(node(r["quarantine_id"]) for r in rows)


def batches(
    conn: Connection,
    *where: sa.ColumnElement[bool],
    columns: Sequence[sa.ColumnElement[Any]] | None = None,
    size: int = BATCH,
) -> Iterator[list[dict[str, Any]]]:
    """The records matching ``where``, by increasing id, opened, ``size`` at a time (each
    batch read by id after the last, so the caller may change records between batches)."""
    chosen = list(columns) if columns is not None else list(q.c)
    for needed in (q.c.quarantine_id, q.c.sealed):
        if all(c is not needed for c in chosen):
            chosen.append(needed)
    keys = schema.person_keys
    # each record's key read in the same query (the ring learns it): no look-up per batch
    joined = q.outerjoin(keys, keys.c.node_id == -q.c.quarantine_id)
    wrapped = keys.c.wrapped.label("_wrapped")
    last: int | None = None
    while True:
        after = [] if last is None else [q.c.quarantine_id > last]
        query = (
            sa.select(*chosen, wrapped)
            .select_from(joined)
            .where(*where, *after)
            .order_by(q.c.quarantine_id)
            .limit(size)
        )
        rows = [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(query)]
        if not rows:
            return
        atrest.keyring(conn).learn(
            (node(r["quarantine_id"]), bytes(w)) for r in rows if (w := r.pop("_wrapped"))
        )
        open_records(conn, rows)
        yield rows
        last = int(rows[-1]["quarantine_id"])


def destroy(conn: Connection, ids: Iterable[int]) -> int:
    """Destroy the keys of the records ``ids`` (in the caller's transaction); how many were."""
    nodes = sorted({node(i) for i in ids})
    ring = atrest.keyring(conn)
    return sum(ring.destroy(conn, nodes[s : s + BATCH]) for s in range(0, len(nodes), BATCH))


def delete(conn: Connection, *where: sa.ColumnElement[bool]) -> int:
    """Delete the records matching ``where``, their keys destroyed first; how many went."""
    removed = 0
    while True:
        ids = [
            int(i)
            for i in conn.execute(
                sa.select(q.c.quarantine_id).where(*where).order_by(q.c.quarantine_id).limit(BATCH)
            ).scalars()
        ]
        if not ids:
            return removed
        destroy(conn, ids)
        unmark(conn, ids)
        conn.execute(q.delete().where(q.c.quarantine_id.in_(ids)))
        removed += len(ids)


def reseal(
    conn: Connection,
    quarantine_id: int,
    value: str | None,
    payload_text: str,
    *,
    now: datetime,
    fresh_key: bool = False,
    **columns: Any,
) -> None:
    """Store a record's new ``value`` and payload (JSON text), sealed, with other ``columns``
    changed. ``fresh_key``: the former content is shredded (its key destroyed) first."""
    if fresh_key:
        destroy(conn, [quarantine_id])
    sealed = seal(conn, [quarantine_id], [value], [payload_text], now=now)[0]
    mark(conn, [quarantine_id], [payload_text])
    conn.execute(
        q.update()
        .where(q.c.quarantine_id == quarantine_id)
        .values(
            value=None,
            payload=None,
            sealed=sealed,
            digest=digest(Store.of(conn), payload_text),
            **columns,
        )
    )
