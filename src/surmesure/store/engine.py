"""The store: one SQLAlchemy engine, migrations, and the bulk paths each backend is fast at.

DuckDB (embedded, ``duckdb:///path``) is the default; PostgreSQL (``postgresql+psycopg://``) is
the production store. Each is a backend (``store.backend``, :mod:`surmesure.store.backends`)
answering the ports of :mod:`surmesure.store.ports`. Row-by-row ``executemany`` is far too slow
for imports on either, so bulk writes go through each engine's own loader: Arrow scans on
DuckDB, ``COPY`` on PostgreSQL. Binary columns (``pa.binary()``, sealed values) load on both:
PostgreSQL reads them from the CSV as ``bytea`` hex text.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from surmesure.store import schema
from surmesure.store.backends import backend_for

if TYPE_CHECKING:  # Arrow is loaded by the first bulk write, not by every command
    import pyarrow as pa

    from surmesure.config import Settings
    from surmesure.store.ports import Backend

VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r'^(revision|down_revision) = "([^"]+)"$', re.MULTILINE)
_stores: weakref.WeakValueDictionary[int, Store] = weakref.WeakValueDictionary()


class Store:
    """Handle on the configured database. Cheap to create; holds a connection pool."""

    def __init__(self, url: str, *, settings: Settings | None = None) -> None:
        self.url = url
        self._settings = settings
        self.backend: Backend = backend_for(url)
        """Every port of :mod:`surmesure.store.ports`, done this database's way."""
        self.engine: Engine = self.backend.engine
        self.dialect: str = self.backend.name
        _stores[id(self.engine)] = self

    @property
    def settings(self) -> Settings:
        """The settings the services working on this store follow: those it was given (the
        app's in :func:`surmesure.api.app.create_app`), else the configured ones. Services take
        them from here or as an argument, never from the environment."""
        if self._settings is None:
            from surmesure.config import get_settings

            return get_settings()
        return self._settings

    def follow(self, settings: Settings | None) -> Settings | None:
        """Have the services on this store follow ``settings`` (``None``: the configured
        ones) from now on; returns those they followed before (``None``: the configured)."""
        before, self._settings = self._settings, settings
        return before

    @staticmethod
    def of(conn: Connection) -> Store:
        """The store ``conn`` is a connection of."""
        return _stores[id(conn.engine)]

    @property
    def is_duckdb(self) -> bool:
        return self.dialect == "duckdb"

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def statements(self) -> Iterator[list[str]]:
        """The SQL statements sent through this store while the block runs, in order (to see
        how many round trips a piece of work costs)."""
        sent: list[str] = []

        def listen(*args: Any) -> None:
            sent.append(str(args[2]))

        sa.event.listen(self.engine, "before_cursor_execute", listen)
        try:
            yield sent
        finally:
            sa.event.remove(self.engine, "before_cursor_execute", listen)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the latest revision (Alembic ``upgrade head``). A store already
        there is recognised without loading Alembic: every command opens the store, and
        starts about 0.8 s sooner."""
        if not self.at_head():
            from surmesure.store.migrate import upgrade

            upgrade(self)
        self.backend.restore_indexes()  # left out by a bulk write the process died inside

    def at_head(self) -> bool:
        """Whether the store's schema is at the newest revision of the migration scripts."""
        head = script_head()
        if head is None:
            return False
        try:
            with self.engine.connect() as conn:
                found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        except sa.exc.DBAPIError:  # no schema yet
            return False
        return [r[0] for r in found] == [head]

    def dispose(self) -> None:
        self.engine.dispose()

    # -- ids ---------------------------------------------------------------------------------

    def next_ids(self, conn: Connection, sequence: sa.Sequence, count: int) -> list[int]:
        """``count`` fresh values of ``sequence``, in one round trip."""
        if count <= 0:
            return []
        return self.backend.next_ids(conn, sequence, count)

    # -- bulk --------------------------------------------------------------------------------

    def bulk_insert(
        self,
        conn: Connection,
        table: sa.Table,
        data: pa.Table,
        *,
        on_conflict: str = "nothing",
    ) -> int:
        """Insert the rows of ``data`` (columns named as in ``table``) and return how many
        were new. ``on_conflict="nothing"`` skips rows whose primary key is already stored,
        which is what makes every import and every collection call idempotent;
        ``on_conflict="update"`` overwrites the non-key columns; ``on_conflict="merge"`` does
        too but never with a missing value (reference data: products, stock, stores)."""
        if data.num_rows == 0:
            return 0
        columns = list(data.column_names)
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"columns {unknown} are not in table {table.name}")
        conflict = self._conflict_clause(table, columns, on_conflict)
        return self.backend.load(conn, table, data, conflict)

    def settle_bulk(self) -> None:
        """Between the transactions of a long bulk write: free the memory the database holds
        for the rows written so far (see :meth:`BulkWrites.settle_bulk
        <surmesure.store.ports.BulkWrites.settle_bulk>`)."""
        self.backend.settle_bulk()

    def release_read_cache(self) -> int:
        """Let go of the table pages read once and cached in this process (see
        :meth:`FastReads.release_read_cache
        <surmesure.store.ports.FastReads.release_read_cache>`); about how many bytes."""
        return self.backend.release_read_cache()

    def deferred_indexes(self, rows: int) -> AbstractContextManager[None]:
        """A bulk write of about ``rows`` rows in the block: the secondary indexes of tables
        holding no more rows may be made once after it rather than kept up to date (see
        :meth:`BulkWrites.deferred_indexes <surmesure.store.ports.BulkWrites.deferred_indexes>`)."""
        return self.backend.deferred_indexes(schema.metadata.sorted_tables, rows)

    def insert_new(self, conn: Connection, table: sa.Table, data: pa.Table, key: str) -> set[str]:
        """Insert the rows of ``data`` whose primary key is not stored yet, in one statement,
        and return the ``key`` of each row inserted (``ON CONFLICT DO NOTHING RETURNING``): a
        lookup of the stored keys, then an insert, costs about three times as much."""
        if data.num_rows == 0:
            return set()
        clause = self._conflict_clause(table, list(data.column_names), "nothing")
        clause += f' RETURNING "{key}"'
        return {str(r[0]) for r in self.backend.load_returning(conn, table, data, clause)}

    @staticmethod
    def _conflict_clause(table: sa.Table, columns: list[str], on_conflict: str) -> str:
        keys = [c.name for c in table.primary_key.columns]
        if on_conflict == "nothing":
            return f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
        if on_conflict == "update":
            sets = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in keys)
            return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        if on_conflict == "merge":
            sets = ", ".join(
                f'"{c}" = coalesce(excluded."{c}", "{table.name}"."{c}")'
                for c in columns
                if c not in keys
            )
            return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        if on_conflict == "error":
            return ""
        raise ValueError(f"on_conflict={on_conflict!r}: use nothing, update, merge or error")

    @staticmethod
    def raw_duckdb(conn: Connection) -> Any:
        """The DuckDB connection under a SQLAlchemy connection, in the same transaction."""
        return conn.connection.driver_connection

    def existing_keys(
        self, conn: Connection, table: sa.Table, column: str, keys: Iterable[str]
    ) -> set[str]:
        """Which of ``keys`` are already stored in ``table.column`` (one query)."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        return self.backend.existing_keys(conn, table, column, wanted)

    def table_counts(self, conn: Connection) -> dict[str, int]:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in schema.metadata.sorted_tables
        }


@lru_cache(maxsize=1)
def script_head() -> str | None:
    """The newest revision of the migration scripts, read from their text (no script runs);
    ``None`` unless exactly one revision is nobody's parent."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
        if "down_revision" in found:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def open_store(
    url: str | None = None, *, migrate: bool = True, settings: Settings | None = None
) -> Store:
    """The store at ``url`` (default: that of ``settings``, else the configured one),
    migrated to the latest schema; its services follow ``settings`` (default: the configured
    ones)."""
    if url is None:
        from surmesure.config import get_settings

        url = (settings or get_settings()).database_url
    store = Store(url, settings=settings)
    if migrate:
        store.migrate()
    return store
