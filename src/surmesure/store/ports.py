"""The store's ports: what the stages ask of a database that each backend does its own way.

Every stage speaks SQLAlchemy Core to the store; these are the few jobs where DuckDB and
PostgreSQL differ (locks across processes, bulk loads, reads straight from the driver, the
analytics engine). Each backend module in :mod:`surmesure.store.backends` answers every port,
so a stage calls ``store.backend.lock_rows(query)`` and never asks which database it is on.
The contract each port promises is checked on every backend by
``tests/store/test_ports_contract.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa


class RowLocks(Protocol):
    """Rows a transaction holds until it ends, so two writers never work the same rows."""

    def lock_rows(
        self, query: sa.Select[Any], *, skip_locked: bool = False, of: sa.Table | None = None
    ) -> sa.Select[Any]:
        """``query`` holding the rows it reads (of ``of`` only, when given) until the
        transaction ends; with ``skip_locked`` it leaves out rows another transaction holds
        instead of waiting for them. A database one process owns returns ``query`` as is."""
        ...

    def lock_or_create(
        self, conn: Connection, table: sa.Table, key: Mapping[str, Any], fresh: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """The row of ``table`` whose primary key is ``key`` (its columns by name), held until
        the transaction ends; inserted first from ``key`` and ``fresh`` when not stored."""
        ...


class KeyLocks(Protocol):
    """Locks named by a number, shared by every process on the database (advisory locks),
    which need not exist where one process owns the database."""

    def lock_key(self, conn: Connection, key: int) -> None:
        """Hold ``key`` exclusively until ``conn``'s transaction ends, waiting for it."""
        ...

    def hold_shared(self, conn: Connection, key: int) -> None:
        """Hold ``key`` shared until ``conn``'s transaction ends (many holders at once)."""
        ...

    def settled(self, key: int, timeout: float) -> AbstractContextManager[Connection | None]:
        """A connection holding ``key`` exclusively while the block runs, taken only at a
        moment no transaction holds it shared (never making a holder wait); ``None`` when
        there was no such moment within ``timeout`` seconds."""
        ...

    def only_process(self, key: int) -> AbstractContextManager[bool]:
        """Whether this process alone holds ``key`` (across transactions) while the block
        runs: false when another process holds it; always true where one process owns the
        database."""
        ...


class BulkWrites(Protocol):
    """Many rows in one statement, through the database's own loader (Arrow scans on DuckDB,
    ``COPY`` on PostgreSQL)."""

    def load(self, conn: Connection, table: sa.Table, data: pa.Table, conflict: str) -> int:
        """``INSERT INTO table (data's columns) SELECT ... {conflict}`` with the rows of
        ``data``; how many rows were inserted."""
        ...

    def load_returning(
        self, conn: Connection, table: sa.Table, data: pa.Table, conflict: str
    ) -> list[Any]:
        """The same, ``conflict`` ending with a RETURNING clause: the rows it returns."""
        ...

    def next_ids(self, conn: Connection, sequence: sa.Sequence, count: int) -> list[int]:
        """``count`` (at least one) fresh values of ``sequence``, in one round trip."""
        ...

    def existing_keys(
        self, conn: Connection, table: sa.Table, column: str, keys: list[str]
    ) -> set[str]:
        """Which of ``keys`` (sorted, distinct, not empty) ``table.column`` holds."""
        ...

    def settle_bulk(self) -> None:
        """After a bulk write committed (a chunk of an imported file): let go of the memory
        the database holds for rows it has not yet written to its files once they are many,
        so that a long import does not hold every row it wrote (nor rewrites its files after
        every chunk). Called between transactions."""
        ...

    def deferred_indexes(
        self, tables: Iterable[sa.Table], rows: int
    ) -> AbstractContextManager[None]:
        """While the block runs (a bulk write of about ``rows`` rows, in transactions of its
        own), the secondary indexes of those ``tables`` that hold no more than ``rows`` rows
        may be left out, and are made again once over the stored rows as it ends, where that
        writes far less than keeping them up to date (DuckDB). Primary keys always stay.
        Should the process die inside, the next :meth:`restore_indexes` makes them again."""
        ...

    def restore_indexes(self) -> None:
        """Make again the indexes a :meth:`deferred_indexes` block left out and did not make
        again (the process died inside it); nothing when there are none."""
        ...


class Relations(Protocol):
    """Lists of values a statement reads as a table (a join or an update with thousands of
    keys, in one statement whatever their number)."""

    def with_values(
        self, conn: Connection, name: str, columns: Mapping[str, pa.Array]
    ) -> AbstractContextManager[Relation]:
        """A relation ``name`` with these columns (of one length) usable in the FROM of
        :meth:`run`'s statements while the block runs."""
        ...

    def run(self, conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The rows of ``sql`` (with ``:name`` parameters), run straight on the driver where
        that is faster; an empty list for a statement that returns none."""
        ...

    def scratch(
        self, conn: Connection, table: sa.Table, data: pa.Table
    ) -> AbstractContextManager[None]:
        """The rows of ``data`` under the name of ``table`` (a temporary table's definition),
        read by the statements of ``conn`` while the block runs: compiled statements that name
        ``table`` read them. DuckDB scans the Arrow table itself; PostgreSQL loads a temporary
        table, dropped after."""
        ...


class FastReads(Protocol):
    """Whole results read without SQLAlchemy's per-row work, where the driver can."""

    probe_max: int
    """Most values a look-up binds one by one (``column IN (:v0, :v1, ...)``) to probe the
    column's index, where a join with the values would read the whole table; 0 where the join
    uses the index anyway."""

    def fetch_literal(self, conn: Connection, query: sa.Select[Any]) -> list[Any]:
        """All rows of ``query``, whose parameters are names and constants (they may be
        written into the statement)."""
        ...

    def fetch_columns(self, conn: Connection, query: sa.Select[Any]) -> list[Sequence[Any]]:
        """The columns of ``query`` in order: NumPy arrays where the driver makes them
        (times as ``datetime``, NULL as ``None``), tuples otherwise; empty for no rows."""
        ...

    def fetch_arrow(self, conn: Connection, query: sa.Select[Any]) -> pa.Table:
        """All rows of ``query`` as an Arrow table, columns named as selected (times as
        ``timestamp[us]``): a large result without a Python object per value."""
        ...

    def fetch_ids(
        self, conn: Connection, sql: str, params: Mapping[str, Any] | None = None
    ) -> npt.NDArray[np.int64]:
        """The first column of ``sql`` (with ``:name`` parameters; integers, no NULL) as an
        int64 array, in the order of the rows."""
        ...

    def fetch_numbers(
        self, conn: Connection, query: sa.Select[Any], integers: Collection[str]
    ) -> dict[str, npt.NDArray[Any]]:
        """The columns of ``query`` by name: those named in ``integers`` as int64 (no NULL),
        the others as float64 with NaN for NULL."""
        ...

    def release_read_cache(self) -> int:
        """After whole tables were read once (a decision server reading everyone at start):
        let go of the table pages this process keeps cached from the reads, whatever they
        would be needed for later (read again then). About how many bytes it freed."""
        ...


class Analytics(Protocol):
    """The engine analytical work runs on (Ibis), and what its SQL can do."""

    bitstrings: bool
    """Whether the SQL has bitmaps (``bitstring_agg``, ``bit_count``, ``get_bit`` on BIT)."""

    def ibis(self, conn: Connection) -> AbstractContextManager[Any]:
        """An Ibis backend on ``conn``'s database connection, tuned to read whole tables."""
        ...


class Relation(Protocol):
    """A list of values as SQL: the text to write in a FROM and the parameters it binds."""

    sql: str
    params: dict[str, Any]


@runtime_checkable
class Backend(RowLocks, KeyLocks, BulkWrites, Relations, FastReads, Analytics, Protocol):
    """One database: every port, its name, and whether several processes may share it."""

    name: str
    shared: bool
    """Whether several processes may use the database at once (a server)."""
    engine: Engine
