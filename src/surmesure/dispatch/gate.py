"""Which changes are settled: a reader of the outbox never skips a change still being written.

Change ids come from a sequence, so a transaction may take id 10, another id 11 and commit
first: a reader that moved its cursor to 11 would never see 10. Each transaction that appends
to the outbox holds the gate *shared* until it ends; a reader takes it *exclusive* for the
moment of its read, so every id below the ones it reads is committed or rolled back for good;
it takes it only when no writer holds it, and never makes a writer wait for it.
The gate is the store's shared lock ``KEY`` (:class:`surmesure.store.ports.KeyLocks`): on
PostgreSQL a transaction-level advisory lock (across processes); on DuckDB, whose file one
process owns, a lock in the process, released when the connection goes back to its pool (after
its commit or rollback).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from surmesure.store.engine import Store

KEY = 0x5355524D  # the lock's number, shared by every process on the database
READ_WAIT_SECONDS = 2.0


def hold(store: Store, conn: Connection) -> None:
    """Hold the gate until ``conn``'s transaction ends (before appending to the outbox)."""
    store.backend.hold_shared(conn, KEY)


@contextmanager
def settled(store: Store, timeout: float = READ_WAIT_SECONDS) -> Iterator[Connection | None]:
    """A connection on which every change id below those read is settled; ``None`` when the
    writers did not finish within ``timeout`` seconds (read again later)."""
    with store.backend.settled(KEY, timeout) as conn:
        yield conn
