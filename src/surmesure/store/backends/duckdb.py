"""The embedded backend: one DuckDB file one process owns (``duckdb:///path``).

One process owns the file, so nothing needs locking across processes: row locks and named
locks are no-ops, and the outbox's gate is a lock in the process. Reads and bulk loads go
straight to the driver, which builds rows and arrays in its own code (SQLAlchemy's per-row work
would dominate), and lists of values are Arrow tables the statement scans.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection, Engine

from surmesure.store.meta import metadata

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa


DUCKDB_CONFIG = {"checkpoint_threshold": "256MB"}
"""DuckDB's settings for a store, unless its URL names them (``duckdb:///f.duckdb?
checkpoint_threshold=16MB``). DuckDB checkpoints when its write-ahead log passes the threshold,
inside a commit, rewriting every row group changed since the last one: at DuckDB's 16 MB the
journey benchmark (100,000 people) spent 40% of its time in commits, rewriting the same tables
again and again, and 28% at 256 MB, with 14% less CPU. A restart replays at most 256 MB of
log."""

SETTLE_LOG = 64 * 2**20
SETTLE_SHARE = 0.25
SETTLE_MEMORY = 0.5
"""Between the chunks of a bulk write, a checkpoint once the log holds ``SETTLE_SHARE`` of the
file and at least ``SETTLE_LOG`` bytes, or once the rows and index entries not yet written to
the file hold ``SETTLE_MEMORY`` of DuckDB's ``memory_limit`` (see
:meth:`DuckDBBackend.settle_bulk`)."""

RELEASE_ROOM = 64 * 2**20
"""The room :meth:`DuckDBBackend.release_read_cache` leaves DuckDB above what it cannot let go
of, for the statements running meanwhile."""
_MEMORY = "SELECT tag, memory_usage_bytes FROM duckdb_memory()"

DEFERRED = ".deferred-indexes"
"""Beside the file (``world.duckdb.deferred-indexes``): the indexes a bulk write dropped, one
name a line, until it has made them again (see :meth:`DuckDBBackend.deferred_indexes`)."""


def memory_bytes(text: str) -> int:
    """A memory size as DuckDB writes it (``18.8 GiB``, ``953.6 MiB``, ``1.5 GB``, ``512
    bytes``) in bytes."""
    number, _, unit = text.strip().partition(" ")
    unit = unit.strip().upper().removesuffix("BYTES").removesuffix("B")
    letter = unit.removesuffix("I")
    power = " KMGTP".index(letter) if letter else 0
    return int(float(number) * (1024 if unit.endswith("I") else 1000) ** power)


class DuckDBConfig(BaseModel):
    """Where the file is (empty or ``:memory:``: in memory)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["duckdb"] = "duckdb"
    path: str = ""

    @classmethod
    def from_url(cls, url: str) -> DuckDBConfig:
        return cls(path=url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else "")


@dataclass
class DuckDBRelation:
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


class DuckDBBackend:
    name = "duckdb"
    shared = False
    bitstrings = True
    probe_max = 500
    """DuckDB probes no index of two columns: a look-up of a call's few identifiers by their
    values probes the index of ``value`` (1 ms at a million identifiers, where a join reads
    them all, 28 ms); beyond 500, a join costs less (a file's chunk: 20,000 probes take 350 ms,
    the join 50 ms)."""

    def __init__(self, url: str) -> None:
        self.config = DuckDBConfig.from_url(url)
        # the memory limit the URL names (else DuckDB's default), to put back exactly
        self._memory_limit = parse_qs(urlsplit(url).query).get("memory_limit", [None])[0]
        if self.config.path and self.config.path != ":memory:":
            Path(self.config.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(
            url,
            pool_pre_ping=False,
            hide_parameters=True,
            connect_args={"config": dict(DUCKDB_CONFIG)},
        )
        # duckdb_engine opts out of SQLAlchemy's cache of compiled statements, although it
        # compiles as the PostgreSQL dialect it derives from: without the cache each call
        # compiles its statement again (a decision's one read, 2 ms of its 3)
        self.engine.dialect._supports_statement_cache = True
        self._gates: dict[int, _Gate] = {}
        self._gates_lock = threading.Lock()

    @staticmethod
    def raw(conn: Connection) -> Any:
        """The DuckDB connection under a SQLAlchemy connection, in the same transaction."""
        return conn.connection.driver_connection

    # -- row locks: one process owns the file ------------------------------------------------

    def lock_rows(
        self, query: sa.Select[Any], *, skip_locked: bool = False, of: sa.Table | None = None
    ) -> sa.Select[Any]:
        return query

    def lock_or_create(
        self, conn: Connection, table: sa.Table, key: Mapping[str, Any], fresh: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        where = [table.c[k] == v for k, v in key.items()]
        row = conn.execute(sa.select(table).where(*where)).first()
        if row is None:
            conn.execute(table.insert().values(**key, **fresh))
            return {**key, **fresh}
        return dict(row._mapping)

    # -- named locks -------------------------------------------------------------------------

    def lock_key(self, conn: Connection, key: int) -> None:
        return None

    def hold_shared(self, conn: Connection, key: int) -> None:
        info = conn.connection.info
        held = (_HELD, key)
        if held in info:
            return
        gate = self._gate(key)
        gate.hold()
        info[held] = gate

    @contextmanager
    def settled(self, key: int, timeout: float) -> Iterator[Connection | None]:
        gate = self._gate(key)
        if not gate.read(timeout):
            yield None
            return
        try:
            with self.engine.connect() as conn:
                yield conn
        finally:
            gate.done()

    @contextmanager
    def only_process(self, key: int) -> Iterator[bool]:
        yield True

    def _gate(self, key: int) -> _Gate:
        with self._gates_lock:
            if not self._gates:
                sa.event.listen(self.engine, "checkin", _on_checkin)
            gate = self._gates.get(key)
            if gate is None:
                gate = self._gates[key] = _Gate()
            return gate

    # -- bulk writes -------------------------------------------------------------------------

    def load(self, conn: Connection, table: sa.Table, data: pa.Table, conflict: str) -> int:
        return int(self.load_returning(conn, table, data, conflict)[0][0])

    def load_returning(
        self, conn: Connection, table: sa.Table, data: pa.Table, conflict: str
    ) -> list[Any]:
        quoted = ", ".join(f'"{c}"' for c in data.column_names)
        raw = self.raw(conn)
        view = f"_bulk_{table.name}"
        raw.register(view, data)
        try:
            rows: list[Any] = raw.execute(
                f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM {view} {conflict}'
            ).fetchall()
            return rows
        finally:
            raw.unregister(view)

    def settle_bulk(self) -> None:
        # DuckDB holds the rows committed since its last checkpoint, and the index entries
        # they added, in memory until the next one (past ``checkpoint_threshold`` of log); a
        # checkpoint writes them to the file and frees that memory. But it also rewrites every
        # index the rows went to, whole: their keys (blind indexes, hashes) land all over it.
        # After every chunk, that wrote the stored indexes again and again (1 GB for 100,000
        # customers in chunks of 10,000, growing with the square of the file; 14 GB for the
        # 200,000-customer world). Once the log holds a share of the file, the rewrites cost
        # a bounded multiple of what was written (half as much at 100,000 customers, far less
        # beyond). Until then memory holds the indexes the chunks loaded (keys all over an
        # index load most of it: the first chunk of a file loads the index whole) and the new
        # rows, pinned: DuckDB cannot evict them, so past ``SETTLE_MEMORY`` of its memory
        # limit a checkpoint comes sooner. A fixed 512 MB did not fit a million customers:
        # their traits' key index alone passes it, so every chunk checkpointed, rewriting
        # gigabytes of indexes each time.
        file = self._file()
        if file is None:
            return
        log = file.with_name(file.name + ".wal")
        written = log.stat().st_size if log.exists() else 0
        with self.engine.connect() as conn:
            raw = self.raw(conn)
            held, limit = raw.execute(
                "SELECT coalesce(sum(memory_usage_bytes), 0), current_setting('memory_limit') "
                "FROM duckdb_memory() WHERE tag IN ('ART_INDEX', 'IN_MEMORY_TABLE')"
            ).fetchall()[0]
            if held >= memory_bytes(limit) * SETTLE_MEMORY or written >= max(
                SETTLE_LOG, int(file.stat().st_size * SETTLE_SHARE)
            ):
                raw.execute("CHECKPOINT")

    def _file(self) -> Path | None:
        path = self.config.path
        if not path or path == ":memory:":
            return None
        return Path(path).expanduser()

    @contextmanager
    def deferred_indexes(self, tables: Iterable[sa.Table], rows: int) -> Iterator[None]:
        # A checkpoint writes every index of a table it changed whole, and holds it whole in
        # memory meanwhile: a file of a million customers loaded into empty tables rewrote
        # their indexes at each checkpoint, more each time. An index DuckDB builds over the
        # rows already stored (CREATE INDEX) takes one pass, and is written once. Keys stay
        # (a primary key cannot be dropped, and it keeps ON CONFLICT and uniqueness); only
        # secondary indexes are left out while the rows load, by tables holding no more than
        # ``rows`` rows (a file into a large table keeps them: making them again would cost
        # more than it saves). Their names are written beside the file first, so a crash
        # mid-import leaves a store whose next opening makes them again.
        file = self._file()
        if file is None:
            yield
            return
        self.restore_indexes()
        dropped: list[sa.Index] = []
        with self.engine.begin() as conn:
            raw = self.raw(conn)
            stored = _index_names(raw)
            for table in tables:
                candidates = [i for i in table.indexes if i.name in stored and not i.unique]
                if (
                    candidates
                    and raw.execute(
                        f'SELECT count(*) <= {int(rows)} FROM "{table.name}"'
                    ).fetchall()[0][0]
                ):
                    dropped += candidates
            if dropped:
                marker = file.with_name(file.name + DEFERRED)
                with marker.open("w") as handle:
                    handle.write("".join(f"{index.name}\n" for index in dropped))
                    handle.flush()
                    os.fsync(handle.fileno())
                for index in dropped:
                    raw.execute(f'DROP INDEX "{index.name}"')
        try:
            yield
        finally:
            self.restore_indexes()

    def restore_indexes(self) -> None:
        file = self._file()
        marker = file.with_name(file.name + DEFERRED) if file is not None else None
        if marker is None or not marker.exists():
            return
        names = set(marker.read_text().split())
        indexes = [i for t in metadata.tables.values() for i in t.indexes if i.name in names]
        with self.engine.begin() as conn:
            stored = _index_names(self.raw(conn))
            for index in indexes:
                if index.name not in stored:
                    index.create(conn)
        with self.engine.connect() as conn:
            self.raw(conn).execute("CHECKPOINT")  # written once, before the marker goes
        marker.unlink()

    def next_ids(self, conn: Connection, sequence: sa.Sequence, count: int) -> list[int]:
        # straight from the driver as one array: SQLAlchemy's rows cost 1 µs each, and a
        # collection batch takes one id per event
        query = f"SELECT nextval('{sequence.name}') AS id FROM range(?)"
        ids: list[int] = self.raw(conn).execute(query, [count]).fetchnumpy()["id"].tolist()
        return ids

    def existing_keys(
        self, conn: Connection, table: sa.Table, column: str, keys: list[str]
    ) -> set[str]:
        # bound constants let DuckDB probe the primary-key index; a join with the keys as a
        # relation would scan the whole column (60 ms a call at 2 million events)
        places = ", ".join("?" * len(keys))
        query = f'SELECT DISTINCT "{column}" FROM "{table.name}" WHERE "{column}" IN ({places})'
        return {r[0] for r in self.raw(conn).execute(query, keys).fetchall()}

    # -- relations ---------------------------------------------------------------------------

    @contextmanager
    def with_values(
        self, conn: Connection, name: str, columns: Mapping[str, pa.Array]
    ) -> Iterator[DuckDBRelation]:
        import pyarrow as pa

        raw = self.raw(conn)
        raw.register(name, pa.table(dict(columns)))
        try:
            yield DuckDBRelation(name)
        finally:
            raw.unregister(name)

    @contextmanager
    def scratch(self, conn: Connection, table: sa.Table, data: pa.Table) -> Iterator[None]:
        # a registered Arrow table costs nothing to make: no table created, loaded (with its
        # key's index) and dropped, three statements and a catalog change a real-time round
        raw = self.raw(conn)
        raw.register(table.name, data)
        try:
            yield
        finally:
            raw.unregister(table.name)

    def run(self, conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        for name in params or ():
            sql = sql.replace(f":{name}", f"${name}")
        cursor = self.raw(conn).execute(sql, dict(params) if params else None)
        return list(cursor.fetchall()) if cursor.description else []

    # -- fast reads --------------------------------------------------------------------------

    def fetch_literal(self, conn: Connection, query: sa.Select[Any]) -> list[Any]:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        return list(self.raw(conn).execute(sql).fetchall())

    def fetch_columns(self, conn: Connection, query: sa.Select[Any]) -> list[Sequence[Any]]:
        import numpy as np

        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        got = self.raw(conn).execute(str(compiled), params).fetchnumpy()
        columns: list[Sequence[Any]] = []
        for values in got.values():
            if np.ma.isMaskedArray(values):
                plain = np.asarray(values.data, dtype=object)
                plain[np.ma.getmaskarray(values)] = None
                values = plain
            elif values.dtype.kind == "M":
                values = values.astype("datetime64[us]").astype(object)
            columns.append(values)
        return columns if len(columns[0]) else []

    def fetch_arrow(self, conn: Connection, query: sa.Select[Any]) -> pa.Table:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        return self.raw(conn).sql(str(compiled), params=params).to_arrow_table()

    def fetch_ids(
        self, conn: Connection, sql: str, params: Mapping[str, Any] | None = None
    ) -> npt.NDArray[np.int64]:
        import numpy as np

        for name in params or ():
            sql = sql.replace(f":{name}", f"${name}")
        got = self.raw(conn).execute(sql, dict(params) if params else {}).fetchnumpy()
        return np.asarray(next(iter(got.values())), dtype=np.int64)

    def fetch_numbers(
        self, conn: Connection, query: sa.Select[Any], integers: Collection[str]
    ) -> dict[str, npt.NDArray[Any]]:
        import numpy as np

        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        got = self.raw(conn).execute(sql).fetchnumpy()
        return {
            k: np.asarray(v, dtype=np.int64)
            if k in integers
            else np.ma.filled(np.ma.asarray(v, dtype=np.float64), np.nan)
            for k, v in got.items()
        }

    def release_read_cache(self) -> int:
        # DuckDB keeps the pages it read up to its memory limit (80% of the machine's memory
        # by default): a server that packed a million customers held a gigabyte of table
        # pages it never reads again. Lowered for a moment to what it cannot let go of (its
        # indexes and the rows not yet written to the file) and some room, it frees the rest;
        # the limit is then put back, so later work has the same room as before.
        if self._file() is None:
            return 0  # in memory: the pages are the tables
        import duckdb

        with self.engine.connect() as conn:
            raw = self.raw(conn)
            limit = raw.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
            named = self._memory_limit
            held = dict(raw.execute(_MEMORY).fetchall())
            before = sum(held.values())
            floor = before - held.get("BASE_TABLE", 0) + RELEASE_ROOM
            if floor >= memory_bytes(limit):
                return 0
            try:
                raw.execute(f"SET memory_limit='{floor}B'")
            except duckdb.OutOfMemoryException:  # pinned meanwhile: keep what is held
                return 0
            finally:  # as given (the text DuckDB shows of it is rounded)
                raw.execute(
                    "RESET memory_limit" if named is None else f"SET memory_limit='{named}'"
                )
            return max(before - sum(dict(raw.execute(_MEMORY).fetchall()).values()), 0)

    # -- analytics ---------------------------------------------------------------------------

    @contextmanager
    def ibis(self, conn: Connection) -> Iterator[Any]:
        import ibis

        yield ibis.duckdb.from_connection(self.raw(conn))


def _index_names(raw: Any) -> set[str]:
    return {r[0] for r in raw.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}


_HELD = "surmesure_gate"


class _Gate:
    """Many holders or one reader. A reader never makes a holder wait: it waits for a moment
    with no holder (between two commits of a steady stream there are many), so a long
    transaction (a large import) delays the reader, never the writers."""

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


def _on_checkin(dbapi_connection: Any, record: Any) -> None:
    """A connection back in its pool (its transaction over) releases the gates it held."""
    for held in [k for k in record.info if isinstance(k, tuple) and k[:1] == (_HELD,)]:
        record.info.pop(held).release()
