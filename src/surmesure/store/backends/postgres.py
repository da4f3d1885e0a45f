"""The server backend: PostgreSQL (``postgresql+psycopg://``), which several processes share.

Rows are locked ``FOR UPDATE`` (``SKIP LOCKED`` where a worker takes what no other holds),
named locks are advisory locks, bulk loads go through ``COPY`` into a staging table, and
lists of values are arrays the statement unnests.
"""

from __future__ import annotations

import io
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa


class PostgresConfig(BaseModel):
    """How the pool checks its connections: ``pool_pre_ping`` replaces one the server closed
    (a restart, an idle timeout) before it is used."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["postgresql"] = "postgresql"
    pool_pre_ping: bool = True


@dataclass
class PostgresRelation:
    sql: str
    params: dict[str, Any]


class PostgresBackend:
    name = "postgresql"
    shared = True
    bitstrings = False
    probe_max = 0  # a join with the values probes the index of two columns

    def __init__(self, url: str, config: PostgresConfig | None = None) -> None:
        self.config = config or PostgresConfig()
        self.engine: Engine = sa.create_engine(
            url, pool_pre_ping=self.config.pool_pre_ping, hide_parameters=True
        )

    # -- row locks ---------------------------------------------------------------------------

    def lock_rows(
        self, query: sa.Select[Any], *, skip_locked: bool = False, of: sa.Table | None = None
    ) -> sa.Select[Any]:
        return query.with_for_update(skip_locked=skip_locked, of=of)

    def lock_or_create(
        self, conn: Connection, table: sa.Table, key: Mapping[str, Any], fresh: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        conn.execute(pg_insert(table).values(**key, **fresh).on_conflict_do_nothing())
        where = [table.c[k] == v for k, v in key.items()]
        return dict(conn.execute(sa.select(table).where(*where).with_for_update()).one()._mapping)

    # -- named locks: advisory locks ---------------------------------------------------------

    def lock_key(self, conn: Connection, key: int) -> None:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def hold_shared(self, conn: Connection, key: int) -> None:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": key})

    @contextmanager
    def settled(self, key: int, timeout: float) -> Iterator[Connection | None]:
        with self.engine.connect() as conn:
            transaction = conn.begin()
            if not _try_lock(conn, key, timeout):
                transaction.rollback()
                yield None
                return
            try:
                yield conn
            finally:
                transaction.rollback()  # it only read; the rollback releases the lock

    @contextmanager
    def only_process(self, key: int) -> Iterator[bool]:
        with self.engine.connect() as conn:
            taken = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one()
            )
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

    # -- bulk writes -------------------------------------------------------------------------

    def load(self, conn: Connection, table: sa.Table, data: pa.Table, conflict: str) -> int:
        return len(self.load_returning(conn, table, data, conflict))

    def load_returning(
        self, conn: Connection, table: sa.Table, data: pa.Table, conflict: str
    ) -> list[Any]:
        """One row per row inserted: the RETURNING values, else placeholders."""
        import pyarrow.csv as pacsv

        quoted = ", ".join(f'"{c}"' for c in data.column_names)
        buffer = io.BytesIO()
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

    def next_ids(self, conn: Connection, sequence: sa.Sequence, count: int) -> list[int]:
        rows = conn.execute(
            sa.text(f"SELECT nextval('{sequence.name}') FROM generate_series(1, :n)"),
            {"n": count},
        )
        return [int(r[0]) for r in rows]

    def settle_bulk(self) -> None:
        return None  # the server writes and evicts on its own

    @contextmanager
    def deferred_indexes(self, tables: Iterable[sa.Table], rows: int) -> Iterator[None]:
        yield  # the server writes index pages as they change, not whole indexes

    def restore_indexes(self) -> None:
        return None

    def existing_keys(
        self, conn: Connection, table: sa.Table, column: str, keys: list[str]
    ) -> set[str]:
        # a join with the unnested keys keeps to the index, where "= ANY(array)" may get a
        # generic plan that scans the table once the statement is prepared
        rows = conn.execute(
            sa.text(
                f'SELECT DISTINCT t."{column}" FROM "{table.name}" t '
                f'JOIN unnest(CAST(:keys AS text[])) AS k(key) ON t."{column}" = k.key'
            ),
            {"keys": keys},
        ).fetchall()
        return {r[0] for r in rows}

    # -- relations ---------------------------------------------------------------------------

    @contextmanager
    def with_values(
        self, conn: Connection, name: str, columns: Mapping[str, pa.Array]
    ) -> Iterator[PostgresRelation]:
        arrays = [f"CAST(:{name}_{c} AS {_SQL_TYPE[str(v.type)]}[])" for c, v in columns.items()]
        params = {f"{name}_{c}": v.to_pylist() for c, v in columns.items()}
        yield PostgresRelation(
            f"unnest({', '.join(arrays)}) AS {name}({', '.join(columns)})", params
        )

    @contextmanager
    def scratch(self, conn: Connection, table: sa.Table, data: pa.Table) -> Iterator[None]:
        # no catalog look-up first (checkfirst costs one): a table a failed call left goes here
        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table.name}"'))
        table.create(conn)
        try:
            self.load(conn, table, data, "")
            yield
        finally:
            table.drop(conn)

    def run(self, conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        result = conn.execute(sa.text(sql), dict(params or {}))
        return list(result.fetchall()) if result.returns_rows else []

    # -- fast reads: SQLAlchemy's rows are as fast as psycopg's here --------------------------

    def fetch_literal(self, conn: Connection, query: sa.Select[Any]) -> list[Any]:
        return list(conn.execute(query).all())

    def fetch_columns(self, conn: Connection, query: sa.Select[Any]) -> list[Sequence[Any]]:
        rows = conn.execute(query).all()
        return list(zip(*rows, strict=True)) if rows else []

    def fetch_arrow(self, conn: Connection, query: sa.Select[Any]) -> pa.Table:
        import pyarrow as pa

        result = conn.execute(query)
        names = list(result.keys())
        rows = result.all()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        return pa.table(
            {name: pa.array(list(values)) for name, values in zip(names, columns, strict=True)}
        )

    def fetch_ids(
        self, conn: Connection, sql: str, params: Mapping[str, Any] | None = None
    ) -> npt.NDArray[np.int64]:
        import numpy as np

        rows = conn.execute(sa.text(sql), dict(params or {})).scalars().all()
        return np.asarray(rows, dtype=np.int64)

    def fetch_numbers(
        self, conn: Connection, query: sa.Select[Any], integers: Collection[str]
    ) -> dict[str, npt.NDArray[Any]]:
        import numpy as np

        result = conn.execute(query)
        names = list(result.keys())
        rows = result.all()
        out: dict[str, npt.NDArray[Any]] = {}
        for i, name in enumerate(names):
            if name in integers:
                out[name] = np.asarray([r[i] for r in rows], dtype=np.int64)
            else:
                out[name] = np.asarray(
                    [np.nan if r[i] is None else float(r[i]) for r in rows], dtype=np.float64
                )
        return out

    def release_read_cache(self) -> int:
        return 0  # the pages are the server's, in its own memory

    # -- analytics ---------------------------------------------------------------------------

    @contextmanager
    def ibis(self, conn: Connection) -> Iterator[Any]:
        import ibis

        raw: Any = conn.connection.driver_connection
        # Ibis reads PostgreSQL results through a server-side cursor, which the planner
        # optimizes for the first 10 % of rows (nested loops, 100 times slower on a whole
        # table); every read here wants all the rows. Nested loops are never the right join
        # for reading whole tables, yet the planner picks them when statistics are missing
        # (right after a bulk import), 30 times slower. SET LOCAL ends with the transaction,
        # which the pool rolls back when the connection is returned.
        with raw.cursor() as cur:
            cur.execute("SET LOCAL cursor_tuple_fraction = 1.0")
            cur.execute("SET LOCAL enable_nestloop = off")
        yield ibis.postgres.from_connection(raw)


_SQL_TYPE = {"string": "text", "large_string": "text", "int64": "bigint", "int32": "integer"}


def _try_lock(conn: Connection, key: int, timeout: float) -> bool:
    """Take the lock exclusive when no writer holds it, trying until ``timeout``: a waiting
    request would queue the writers that come after it (PostgreSQL grants locks in order)."""
    deadline = time.monotonic() + timeout
    query = sa.text("SELECT pg_try_advisory_xact_lock(:k)")
    while not conn.execute(query, {"k": key}).scalar_one():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


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
