"""Which changes are settled: a reader of the outbox never skips a change still being written.

Change ids come from a sequence, so a transaction may take id 10, another id 11 and commit
first: a reader that moved its cursor to 11 would never see 10. Each transaction that appends
to the outbox holds the gate *shared* until it ends; a reader takes it *exclusive* for the
moment of its read, so every id below the ones it reads is committed or rolled back for good;
it takes it only when no writer holds it, and never makes a writer wait for it.
On PostgreSQL the gate is a transaction-level advisory lock (across processes); on DuckDB,
whose file one process owns, a lock in the process, released when the connection goes back to
its pool (after its commit or rollback).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.store.engine import Store

KEY = 0x5355524D  # the advisory lock's number, shared by every process on the database
HELD = "surmesure_outbox_gate"
READ_WAIT_SECONDS = 2.0


class _Gate:
    """Many holders or one reader. A reader never makes a holder wait: it waits for a moment
    with no holder (between two commits of a steady stream there are many), so a long
    transaction (a large import) delays the dispatch, never the collection."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holders = 0
        self._reading = False

    def hold(self) -> None:
        with self._cond:
            while self._reading:
                self._cond.wait()
            self._holders += 1

    def release(self) -> None:
        with self._cond:
            self._holders -= 1
            self._cond.notify_all()

    def read(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._reading or self._holders:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            self._reading = True
            return True

    def done(self) -> None:
        with self._cond:
            self._reading = False
            self._cond.notify_all()


_gates: dict[int, _Gate] = {}
_gates_lock = threading.Lock()


def _gate(store: Store) -> _Gate:
    with _gates_lock:
        gate = _gates.get(id(store.engine))
        if gate is None:
            gate = _gates[id(store.engine)] = _Gate()
            sa.event.listen(store.engine, "checkin", _on_checkin)
        return gate


def _on_checkin(dbapi_connection: Any, record: Any) -> None:
    gate = record.info.pop(HELD, None)
    if gate is not None:
        gate.release()


def hold(store: Store, conn: Connection) -> None:
    """Hold the gate until ``conn``'s transaction ends (before appending to the outbox)."""
    if not store.is_duckdb:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": KEY})
        return
    info = conn.connection.info
    if HELD in info:
        return
    gate = _gate(store)
    gate.hold()
    info[HELD] = gate


def _try_lock(conn: Connection, timeout: float) -> bool:
    """Take the lock exclusive when no writer holds it, trying until ``timeout``: a waiting
    request would queue the writers that come after it (PostgreSQL grants locks in order)."""
    deadline = time.monotonic() + timeout
    query = sa.text("SELECT pg_try_advisory_xact_lock(:k)")
    while not conn.execute(query, {"k": KEY}).scalar_one():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


@contextmanager
def settled(store: Store, timeout: float = READ_WAIT_SECONDS) -> Iterator[Connection | None]:
    """A connection on which every change id below those read is settled; ``None`` when the
    writers did not finish within ``timeout`` seconds (read again later)."""
    if not store.is_duckdb:
        with store.connect() as conn:
            transaction = conn.begin()
            if not _try_lock(conn, timeout):
                transaction.rollback()
                yield None
                return
            try:
                yield conn
            finally:
                transaction.rollback()  # it only read; the rollback releases the lock
        return
    gate = _gate(store)
    if not gate.read(timeout):
        yield None
        return
    try:
        with store.connect() as conn:
            yield conn
    finally:
        gate.done()
