"""The decision log written behind a decision server: queued in memory, written in batches.

A server answers a decision before it is stored: :meth:`DecisionLog.queue` keeps the decision
and its exposures as they will be written (the JSON columns already JSON text, so the
collector never walks them while they wait), and :meth:`DecisionLog.flush` writes whatever is
queued in one transaction: the exposures, then the decisions, sealed under each person's data
key (:func:`surmesure.protect.atrest.seal_decisions`). The serving thread flushes every
``flush_ms``; the ``why`` route and a shutdown flush before they read or leave.

The log's ids are new (uuid4), so rows are appended with a plain insert, without DuckDB's
``ON CONFLICT DO NOTHING`` (about three times the cost), as Arrow tables.

Checkpoints. DuckDB checkpoints its write-ahead log into the database file once the log
passes 16 MB by default: at 1,000 decisions a second, every 15 s or so, and each checkpoint
rewrites the primary-key and other indexes of the log's tables whole, so its cost grows with
the log (measured: from 0.2 to 1.3 s of CPU per 25,000 decisions over the first 100,000, with
flushes held up to 2.3 s). A store lets the log grow to 256 MB instead (see
:data:`surmesure.store.backends.duckdb.DUCKDB_CONFIG`): a checkpoint every few minutes then,
the rows meanwhile held in memory (as they are anyway until a checkpoint) and replayed from
the log after a crash; a clean stop checkpoints.

Readers. Whoever reads people from the store for the serving cache must see every exposure of
this server, either in the store or still in memory, without waiting for a write (a decision
whose person is not held reads them on the event loop). A reader notes the log's
:attr:`~DecisionLog.generation` (flushes committed) before its read, then asks
:meth:`DecisionLog.shown` for what was queued, is being written, or was committed since
(possibly also in its read: an exposure counted twice changes nothing, the ledger keeps the
latest time). ``lock`` is held while writing; whoever needs the store and the log to agree
exactly (the serving cache's whole reads and its fingerprint) holds it too.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Container, Mapping
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy.engine import Connection

from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.engine import Store

EXPOSURE_TYPES = {
    "exposure_id": pa.string(),
    "person_id": pa.int64(),
    "node_id": pa.int64(),
    "content_id": pa.string(),
    "channel": pa.string(),
    "placement": pa.string(),
    "shown_at": pa.timestamp("us"),
    "expires_at": pa.timestamp("us"),
}
DECISION_TYPES = {
    "decision_id": pa.string(),
    "person_id": pa.int64(),
    "placement": pa.string(),
    "context": pa.string(),
    "result": pa.string(),
    "explanation": pa.string(),
    "decided_at": pa.timestamp("us"),
    "sealed": pa.binary(),
}
JSON_COLUMNS = atrest.DECISION_COLUMNS

Shown = tuple[int, tuple[str, ...], datetime]
"""A person, the contents shown to them by one decision, and when."""
Remembered = tuple[int, tuple[int, ...], tuple[str | tuple[str, ...], ...], tuple[datetime, ...]]
"""What one committed flush showed (:func:`_remembered`): its generation, then per decision
the person, the contents (joined by :data:`SEP`) and the time, a column each: four objects a
flush, which the garbage collector stops tracking, where a :data:`Shown` each would be two
objects a decision its young collections walk (some 30,000 kept at 1,000 decisions a
second)."""
SEP = "\x1f"
RECENT = 128
"""Committed flushes whose exposures are kept for readers (32 s at one flush per 250 ms)."""


class DecisionLog:
    """Decisions and their exposures, queued until the next :meth:`flush`."""

    def __init__(self, store: Store, lock: threading.RLock) -> None:
        self.store = store
        self.lock = lock
        self._pending: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
        self._writing: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
        self._recent: deque[Remembered] = deque(maxlen=RECENT)
        self._pending_lock = threading.Lock()
        self.generation = 0
        """Flushes committed (or failed) so far."""
        self.written = 0
        """Exposures written since the owner last set it to 0."""

    def __len__(self) -> int:
        return len(self._pending)

    def queue(self, exposures: list[dict[str, Any]], decision: dict[str, Any]) -> None:
        """Keep one decision (its JSON columns already :func:`encoded`) and its exposures."""
        with self._pending_lock:
            self._pending.append((exposures, decision))

    def shown(self, people: Container[int] | None = None) -> list[Shown]:
        """What the decisions queued or being written showed, to ``people`` (everyone:
        ``None``)."""
        found = self.shown_since(self.generation, people)
        assert found is not None  # nothing committed since now is needed
        return found

    def shown_since(self, since: int, people: Container[int] | None = None) -> list[Shown] | None:
        """:meth:`shown`, and what the flushes committed after ``since`` (a
        :attr:`generation` noted before reading the store) showed; ``None`` when they are no
        longer kept (read the store again)."""
        with self._pending_lock:
            kept = [flushed for flushed in self._recent if flushed[0] > since]
            if len(kept) < self.generation - since:
                return None
            every = [s for flushed in kept for s in _recalled(flushed)]
            every += _shown(self._writing) + _shown(self._pending)
        return [s for s in every if people is None or s[0] in people]

    def flush(self) -> int:
        """Write every queued decision and exposure in one transaction; how many decisions."""
        with self.lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
                self._writing = batch
            if not batch:
                return 0
            try:
                self._write(batch)
            finally:
                with self._pending_lock:
                    self._writing = []
                    self.generation += 1
                    self._recent.append(_remembered(self.generation, _shown(batch)))
            return len(batch)

    def _write(self, batch: list[tuple[list[dict[str, Any]], dict[str, Any]]]) -> None:
        """One transaction: the exposures, then the decisions, sealed."""
        exposures = [x for xs, _ in batch for x in xs]
        decisions = [d for _, d in batch]
        with self.store.begin() as conn:
            if exposures:
                self.store.bulk_insert(
                    conn,
                    schema.exposures,
                    table(exposures, EXPOSURE_TYPES),
                    on_conflict="error",
                )
            insert(self.store, conn, decisions)
        self.written += len(exposures)


def insert(store: Store, conn: Connection, decisions: list[dict[str, Any]]) -> None:
    """Append ``decisions`` (their JSON columns :func:`encoded`), each sealed under its
    person's data key, in the caller's transaction."""
    sealed = atrest.seal_decisions(conn, decisions, now=decisions[-1]["decided_at"], encoded=True)
    rows = [
        d if s is None else {**d, **dict.fromkeys(JSON_COLUMNS), "sealed": s}
        for d, s in zip(decisions, sealed, strict=True)
    ]
    store.bulk_insert(conn, schema.decisions, table(rows, DECISION_TYPES), on_conflict="error")


def _shown(batch: list[tuple[list[dict[str, Any]], dict[str, Any]]]) -> list[Shown]:
    return [
        (d["person_id"], tuple([x["content_id"] for x in xs]), d["decided_at"])
        for xs, d in batch
        if xs and d["person_id"] is not None
    ]


def _remembered(generation: int, shown: list[Shown]) -> Remembered:
    return (
        generation,
        tuple([p for p, _, _ in shown]),
        tuple([c if any(SEP in x for x in c) else SEP.join(c) for _, c, _ in shown]),
        tuple([at for _, _, at in shown]),
    )


def _recalled(flushed: Remembered) -> list[Shown]:
    _, people, contents, times = flushed
    return [
        (p, tuple(c.split(SEP)) if isinstance(c, str) else c, at)
        for p, c, at in zip(people, contents, times, strict=True)
    ]


def encoded(decision: dict[str, Any]) -> dict[str, Any]:
    """A decision row with its JSON columns as JSON text."""
    return {
        k: orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        if k in JSON_COLUMNS
        else v
        for k, v in decision.items()
    }


def table(rows: list[dict[str, Any]], types: Mapping[str, pa.DataType]) -> pa.Table:
    """``rows`` as an Arrow table of ``types``' columns."""
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], type=kind) for name, kind in types.items()}
    )
