"""The store: one SQLAlchemy engine, migrations, and the bulk paths each backend is fast at.

DuckDB (embedded, ``duckdb:///path``) is the default; PostgreSQL (``postgresql+psycopg://``) is
the production store. Row-by-row ``executemany`` is far too slow for imports on either, so bulk
writes go through each engine's own loader: Arrow scans on DuckDB, ``COPY`` on PostgreSQL.
Binary columns (``pa.binary()``, sealed values) load on both: PostgreSQL reads them from the
CSV as ``bytea`` hex text.
"""

from __future__ import annotations

import io
import re
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from surmesure.errors import ConfigError
from surmesure.store import schema

if TYPE_CHECKING:  # Arrow is loaded by the first bulk write, not by every command
    import pyarrow as pa

SUPPORTED = ("duckdb", "postgresql")
VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r'^(revision|down_revision) = "([^"]+)"$', re.MULTILINE)
_stores: weakref.WeakValueDictionary[int, Store] = weakref.WeakValueDictionary()
DUCKDB_CONFIG = {"checkpoint_threshold": "256MB"}
"""DuckDB's settings for a store, unless its URL names them (``duckdb:///f.duckdb?
checkpoint_threshold=16MB``). DuckDB checkpoints when its write-ahead log passes the threshold,
inside a commit, rewriting every row group changed since the last one: at DuckDB's 16 MB the
journey benchmark (100,000 people) spent 40% of its time in commits, rewriting the same tables
again and again, and 28% at 256 MB, with 14% less CPU. A restart replays at most 256 MB of
log."""


class Store:
    """Handle on the configured database. Cheap to create; holds a connection pool."""

    def __init__(self, url: str) -> None:
        scheme = url.split(":", 1)[0].split("+", 1)[0]
        if scheme not in SUPPORTED:
            raise ConfigError(
                f"Database URL {url!r} is not supported.",
                hint="use duckdb:///path/to/file.duckdb or postgresql+psycopg://user@host/db",
                field="SURMESURE_DATABASE_URL",
            )
        if scheme == "duckdb":
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        # hide_parameters: an error's text (which logs and tracebacks print) never carries the
        # values of the statement, which are a person's identifiers and traits
        self.engine: Engine = sa.create_engine(
            url,
            pool_pre_ping=scheme == "postgresql",
            hide_parameters=True,
            connect_args={"config": dict(DUCKDB_CONFIG)} if scheme == "duckdb" else {},
        )
        if scheme == "duckdb":
            # duckdb_engine opts out of SQLAlchemy's cache of compiled statements, although it
            # compiles as the PostgreSQL dialect it derives from: without the cache each call
            # compiles its statement again (a decision's one read, 2 ms of its 3)
            self.engine.dialect._supports_statement_cache = True
        self.dialect: str = scheme
        _stores[id(self.engine)] = self

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
        if self.at_head():
            return
        from surmesure.store.migrate import upgrade

        upgrade(self)

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
        series = "range(:n)" if self.is_duckdb else "generate_series(1, :n)"
        rows = conn.execute(
            sa.text(f"SELECT nextval('{sequence.name}') FROM {series}"), {"n": count}
        )
        return [int(r[0]) for r in rows]

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
        quoted = ", ".join(f'"{c}"' for c in columns)
        conflict = self._conflict_clause(table, columns, on_conflict)
        if self.is_duckdb:
            return int(self._duckdb_insert(conn, table, data, quoted, conflict)[0][0])
        return len(self._postgres_insert(conn, table, data, quoted, conflict))

    def insert_new(self, conn: Connection, table: sa.Table, data: pa.Table, key: str) -> set[str]:
        """Insert the rows of ``data`` whose primary key is not stored yet, in one statement,
        and return the ``key`` of each row inserted (``ON CONFLICT DO NOTHING RETURNING``): a
        lookup of the stored keys, then an insert, costs about three times as much."""
        if data.num_rows == 0:
            return set()
        quoted = ", ".join(f'"{c}"' for c in data.column_names)
        clause = self._conflict_clause(table, list(data.column_names), "nothing")
        clause += f' RETURNING "{key}"'
        if self.is_duckdb:
            return {str(r[0]) for r in self._duckdb_insert(conn, table, data, quoted, clause)}
        return {str(r[0]) for r in self._postgres_insert(conn, table, data, quoted, clause)}

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

    def _duckdb_insert(
        self, conn: Connection, table: sa.Table, data: pa.Table, quoted: str, conflict: str
    ) -> list[Any]:
        """The rows the statement returns: the count inserted, or the RETURNING rows."""
        raw = self.raw_duckdb(conn)
        view = f"_bulk_{table.name}"
        raw.register(view, data)
        try:
            rows: list[Any] = raw.execute(
                f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM {view} {conflict}'
            ).fetchall()
        finally:
            raw.unregister(view)
        return rows

    def _postgres_insert(
        self, conn: Connection, table: sa.Table, data: pa.Table, quoted: str, conflict: str
    ) -> list[Any]:
        """One row per row inserted: the RETURNING values, else placeholders."""
        buffer = io.BytesIO()
        import pyarrow.csv as pacsv

        pacsv.write_csv(
            _bytea_as_text(data),
            buffer,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        raw: Any = conn.connection.driver_connection
        staging = f"_bulk_{table.name}"
        with raw.cursor() as cur:
            # the staging table lives until the transaction ends; emptied by DELETE when the
            # transaction loads the same table again (a TRUNCATE makes new files each time)
            cur.execute(
                f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" '
                f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP; DELETE FROM "{staging}"'
            )
            with cur.copy(f'COPY "{staging}" ({quoted}) FROM STDIN WITH (FORMAT csv)') as copy:
                copy.write(buffer.getvalue())
            cur.execute(
                f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{staging}" {conflict}'
            )
            inserted: list[Any] = (
                cur.fetchall() if "RETURNING" in conflict else [()] * max(cur.rowcount, 0)
            )
        return inserted

    def existing_keys(
        self, conn: Connection, table: sa.Table, column: str, keys: Iterable[str]
    ) -> set[str]:
        """Which of ``keys`` are already stored in ``table.column`` (one query)."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        if self.is_duckdb:
            # bound constants let DuckDB probe the primary-key index; a join with the keys as
            # a relation would scan the whole column (60 ms a call at 2 million events)
            places = ", ".join("?" * len(wanted))
            query = f'SELECT DISTINCT "{column}" FROM "{table.name}" WHERE "{column}" IN ({places})'
            rows = self.raw_duckdb(conn).execute(query, wanted).fetchall()
        else:
            # a join with the unnested keys keeps to the index, where "= ANY(array)" may get
            # a generic plan that scans the table once the statement is prepared
            rows = conn.execute(
                sa.text(
                    f'SELECT DISTINCT t."{column}" FROM "{table.name}" t '
                    f'JOIN unnest(CAST(:keys AS text[])) AS k(key) ON t."{column}" = k.key'
                ),
                {"keys": wanted},
            ).fetchall()
        return {r[0] for r in rows}

    def table_counts(self, conn: Connection) -> dict[str, int]:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in schema.metadata.sorted_tables
        }


def _bytea_as_text(data: pa.Table) -> pa.Table:
    """``data`` with each binary column as PostgreSQL's hex text for ``bytea`` (``\\x0a1b``),
    which ``COPY`` reads back as the same bytes."""
    import pyarrow as pa

    for position, column in enumerate(data.schema):
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            texts = [
                None if b is None else "\\x" + b.hex() for b in data.column(position).to_pylist()
            ]
            data = data.set_column(position, column.name, pa.array(texts, pa.string()))
    return data


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


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """The store at ``url`` (default: settings), migrated to the latest schema."""
    from surmesure.config import get_settings

    store = Store(url or get_settings().database_url)
    if migrate:
        store.migrate()
    return store
