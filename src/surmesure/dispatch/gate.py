"""Which changes are settled: a reader of the outbox never skips a change still being written.

Change ids come from a sequence, so a transaction may take id 10, another id 11 and commit
first: a reader that moved its cursor to 11 would never see 10. Each transaction that appends
to the outbox holds the gate *shared* until it ends; a reader takes it *exclusive* for the
moment of its read, so every id below the ones it reads is committed or rolled back for good.
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
    """Many holders or one reader; a waiting reader goes before new holders, so a steady
    stream of writes cannot starve it (it waits only for the transactions already writing)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holders = 0
        self._reading = False
        self._waiting = 0

    def hold(self) -> None:
        with self._cond:
            while self._reading or self._waiting:
                self._cond.wait()
            self._holders += 1

    def release(self) -> None:
        with self._cond:
            self._holders -= 1
            self._cond.notify_all()

    def read(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            try:
                while self._reading or self._holders:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                self._reading = True
                return True
            finally:
                self._waiting -= 1
                self._cond.notify_all()

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


@contextmanager
def settled(store: Store, timeout: float = READ_WAIT_SECONDS) -> Iterator[Connection | None]:
    """A connection on which every change id below those read is settled; ``None`` when the
    writers did not finish within ``timeout`` seconds (read again later)."""
    if not store.is_duckdb:
        with store.connect() as conn:
            transaction = conn.begin()
            try:
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{int(timeout * 1000)}ms'"))
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": KEY})
            except sa.exc.OperationalError:
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
