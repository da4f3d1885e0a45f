"""A built DuckDB world copied into a PostgreSQL database, so that the PostgreSQL benchmarks
(``bench_workers.py``: two API workers and Redis) measure the same world as the DuckDB ones
without importing and deriving it again on PostgreSQL (well over an hour at 1,000,000
customers, where the DuckDB world takes about 50 minutes and is built anyway).

1. The database is created if missing (``--replace``: dropped and created again; a database
   that holds people already is refused without it) and migrated as the product migrates
   any store it opens (:func:`~surmesure.store.open_store`, Alembic to the head). The DuckDB
   file must be at the same revision: it is opened read-only, never migrated here.
2. Every table of the schema (:data:`surmesure.store.schema.metadata`) but
   ``alembic_version`` is copied in foreign-key order, all in one transaction (a copy that
   fails leaves the database as migrated): each table emptied (``TRUNCATE``: whatever the
   migrations filled in is replaced by the world's rows), then loaded by ``COPY ... FROM
   STDIN (FORMAT csv, FREEZE)`` from Arrow batches of ``--batch-rows`` rows streamed out of
   DuckDB (never a whole table in memory: 360 MB resident whatever the world). DuckDB
   writes binary columns as ``bytea`` hex text, JSON as its text (PostgreSQL makes ``jsonb``
   of it; a JSON ``null`` stays one, apart from a NULL), lists as array literals; Arrow's
   CSV writer the rest (timestamps with and without a time zone, dates, booleans, numbers
   in their shortest exact text, and ``""`` for an empty string, which PostgreSQL tells from
   a NULL). ``FREEZE`` writes the rows frozen and all-visible, as a ``VACUUM`` would leave
   them, which index-only scans need.
3. With ``--indexes rebuild`` (the default) the indexes of the tables that receive rows,
   primary keys and unique constraints included, are dropped before the copy and made again
   after it from their own definitions (``pg_indexes``, ``pg_get_constraintdef``): one sort
   each rather than a B-tree kept up row by row. The indexes and constraints at the end are
   checked equal to those the migrations made.
4. Each sequence is set past both the same sequence in DuckDB and the largest id of the
   columns it numbers: the change outbox's ids in particular continue after the
   subscribers' cursors even once its rows were pruned (a world's outbox is empty, its
   sequence at 21,976 on 3,000 customers). Then ``ANALYZE``.
5. The rows of every table are counted on both sides: any difference fails the copy (exit
   status 1). A table prints each table's rows on both sides, its seconds and rows/s.

``--world-dir DIR`` prepares the folder ``bench_workers.py --world`` reads: ``DIR/demo`` is
made a link to the demo folder beside the DuckDB file (``keys.env``: the demo's API keys,
whose hashes are in the copied ``api_keys``), so ``bench_decide.build_store(..., reuse=True)``
finds the world built and measures it as it is (``build_s`` 0.4). The data stays sealed
under the key it was built with: run the servers with the same ``SURMESURE_ENCRYPTION_KEY``
(the benchmarks' ``bench-encryption-key``), and they greet the same people by name as on
the DuckDB file. The DuckDB file must not be open in another process (a server, a build).

    python benchmarks/world_copy.py --duckdb DIR/world.duckdb \\
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/NAME [--replace] \\
        [--world-dir DIR-pg] [--batch-rows 50000] [--indexes rebuild|keep]
    python benchmarks/bench_workers.py --world DIR-pg --world-db NAME --customers N

Measured on 2 cores another world's build kept busy (load 4 to 7), PostgreSQL 15 with its
default settings but ``maintenance_work_mem`` (256 MB for the copy's session):

- 20,000 customers (``bench_decide.py --customers 20000 --world DIR``; 26,868 people,
  893,261 rows, 286,037 of them traits): the rows copied in 4.0 to 5.5 s (164,000 to
  223,000 rows/s; traits 240,000 to 275,000 rows/s, decisions, all JSON, 11,000 to 16,000),
  the 75 indexes made in 2.0 to 2.9 s, ``ANALYZE`` 1.5 to 1.7 s: 10 to 15 s in all with
  the database made and migrated. Keeping the indexes up instead (``--indexes keep``): the
  rows in 11.5 s (78,000 rows/s), 15 s in all.
- 3,000 customers (157,796 rows): the rows in 1.8 to 2.6 s, 4.5 to 9 s in all.
- 1,000,000 customers (1.34 million people, 14 million traits: 50 times the 20,000): about
  45 million rows, so about 4 minutes of rows at the 20,000's rate and 2 to 3 of indexes
  (a sort of 50 times as many rows, on disk past ``maintenance_work_mem``), some 8 GB in
  PostgreSQL and as much write-ahead log: 7 to 10 minutes, where building the world on
  PostgreSQL takes well over an hour.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from surmesure.store import open_store, schema
from surmesure.store.engine import script_head

BATCH_ROWS = 50_000

SEQUENCE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "person_id_seq": (("people", "person_id"), ("person_keys", "node_id")),
    "merge_id_seq": (("merges", "merge_id"),),
    "quarantine_id_seq": (("quarantine", "quarantine_id"),),
    "import_run_id_seq": (("import_runs", "run_id"),),
    "change_id_seq": (
        ("changes", "change_id"),
        ("change_cursors", "position"),
        ("change_failures", "change_id"),
    ),
}
"""The columns each sequence of the schema numbers (what ``Store.next_ids`` draws it for):
the sequence is set past the largest value found in any of them."""

PLAIN = {
    "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "BOOLEAN", "DATE",
    "VARCHAR", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE",
}  # fmt: skip
"""DuckDB types Arrow's CSV writer writes as PostgreSQL reads them."""


class CopyError(Exception):
    """The copy cannot start, or its result differs from the source (exit status 1)."""


@dataclass
class Copied:
    table: str
    source_rows: int
    target_rows: int = -1
    seconds: float = 0.0


@dataclass
class Report:
    tables: list[Copied] = field(default_factory=list)
    copy_s: float = 0.0
    drop_indexes_s: float = 0.0
    indexes_s: float = 0.0
    sequences: dict[str, int] = field(default_factory=dict)
    analyze_s: float = 0.0
    total_s: float = 0.0
    indexes_rebuilt: int = 0

    @property
    def rows(self) -> int:
        return sum(t.source_rows for t in self.tables)

    @property
    def equal(self) -> bool:
        return all(t.source_rows == t.target_rows for t in self.tables)


# -- the source ----------------------------------------------------------------------------------


def open_source(path: Path) -> Any:
    """The DuckDB world, read-only, at the revision the migrations' head is."""
    import duckdb

    if not path.is_file():
        raise CopyError(f"{path}: no such DuckDB file")
    if path.with_name(path.name + ".deferred-indexes").exists():
        print(f"note: {path} has indexes left to make (a bulk write stopped); the rows are copied")
    try:
        source = duckdb.connect(str(path), read_only=True, config={"memory_limit": "4GB"})
    except duckdb.Error as exc:
        raise CopyError(f"{path} cannot be opened read-only (in use?): {exc}") from exc
    found = [r[0] for r in source.execute("SELECT version_num FROM alembic_version").fetchall()]
    head = script_head()
    if found != [head]:
        source.close()
        raise CopyError(
            f"{path} is at revision {found}, the migrations at {head}: open it once with this "
            "checkout (e.g. `surmesure status` on it) to migrate it, then copy"
        )
    return source


def source_columns(source: Any) -> dict[str, dict[str, str]]:
    """Each table's columns and their DuckDB types, in order."""
    columns: dict[str, dict[str, str]] = {}
    rows = source.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "AND NOT internal ORDER BY table_name, column_index"
    ).fetchall()
    for table, column, kind in rows:
        columns.setdefault(table, {})[column] = kind
    return columns


def select_sql(table: str, columns: list[str], types: dict[str, str]) -> str:
    """The DuckDB query of ``table``'s ``columns``, each as PostgreSQL's COPY reads it."""
    return f"SELECT {', '.join(_as_text(c, types[c]) for c in columns)} FROM {_q(table)}"


def _as_text(column: str, kind: str) -> str:
    q = _q(column)
    if kind in PLAIN:
        return q
    if kind == "BLOB":
        return f"'\\x' || hex({q}) AS {q}"  # bytea's hex text; NULL stays NULL
    if kind == "JSON" or kind.startswith(("DECIMAL", "UUID", "INTERVAL", "TIME", "HUGEINT")):
        return f"CAST({q} AS VARCHAR) AS {q}"
    if kind.endswith("[]") and kind.count("[]") == 1 and kind[:-2] in PLAIN | {"JSON"}:
        # an array literal: each element quoted and escaped, NULL unquoted
        element = (
            "CASE WHEN x IS NULL THEN 'NULL' ELSE '\"' || "
            "replace(replace(CAST(x AS VARCHAR), '\\', '\\\\'), '\"', '\\\"') || '\"' END"
        )
        elements = f"array_to_string(list_transform({q}, lambda x: {element}), ',')"
        return f"CASE WHEN {q} IS NULL THEN NULL ELSE '{{' || {elements} || '}}' END AS {q}"
    raise CopyError(f"column {column} is of DuckDB type {kind}, which this copy does not write")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- the target ----------------------------------------------------------------------------------


def prepare_target(url: str, *, replace: bool) -> bool:
    """Create the database of ``url`` if missing (with ``replace``: drop and create it); refuse
    one that holds people. Whether it was made here."""
    target = sa.engine.make_url(url)
    name = target.database
    if not name:
        raise CopyError(f"{url}: name the database to copy into")
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists and replace:
                conn.execute(sa.text(f"DROP DATABASE {_q(name)} WITH (FORCE)"))
            elif exists:
                people = holds_people(url)
                if people:
                    raise CopyError(
                        f"database {name} holds people already ({people:,} identity nodes): "
                        "pass --replace to drop it and copy the world into a new one"
                    )
                return False
            conn.execute(sa.text(f"CREATE DATABASE {_q(name)}"))
            return True
    finally:
        admin.dispose()


def holds_people(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM people")).scalar_one())
    except sa.exc.ProgrammingError:  # no people table: no schema yet
        return 0
    finally:
        engine.dispose()


def raw_connection(url: str) -> Any:
    """A psycopg connection to the database of ``url`` (COPY and DDL)."""
    import psycopg

    plain = sa.engine.make_url(url).set(drivername="postgresql")
    return psycopg.connect(plain.render_as_string(hide_password=False))


def target_columns(pg: Any) -> dict[str, list[str]]:
    rows = pg.execute(
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
    ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def index_shape(pg: Any) -> list[tuple[str, ...]]:
    """Every index and constraint of the schema, as their definitions: what the migrations made
    and what the copy must leave."""
    indexes = pg.execute(
        "SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    ).fetchall()
    constraints = pg.execute(
        "SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
    ).fetchall()
    return sorted(tuple(r) for r in [*indexes, *constraints])


def droppable(pg: Any, tables: list[str]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The primary keys and unique constraints of ``tables`` (table, name, definition) and the
    definitions of their other indexes: what is dropped before the copy and made after it.
    Nothing is dropped from a schema with foreign keys (they hold on to the keys)."""
    if pg.execute("SELECT 1 FROM pg_constraint WHERE contype = 'f' LIMIT 1").fetchone():
        return [], []
    constraints = [
        (str(t), str(n), str(d))
        for t, n, d in pg.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
            "AND contype IN ('p', 'u') AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
            (tables,),
        ).fetchall()
    ]
    indexes = [
        str(d)
        for (d,) in pg.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "ORDER BY 1",
            (tables,),
        ).fetchall()
    ]
    return constraints, indexes


# -- the copy ------------------------------------------------------------------------------------


def copy_world(
    duckdb_path: Path,
    url: str,
    *,
    replace: bool = False,
    batch_rows: int = BATCH_ROWS,
    rebuild_indexes: bool = True,
    maintenance_work_mem: str = "256MB",
    quiet: bool = False,
) -> Report:
    """Copy the DuckDB world at ``duckdb_path`` into the PostgreSQL database of ``url`` (see
    the module's description); the report of what was copied, counted on both sides."""
    from surmesure.cli.common import progress

    started = time.perf_counter()
    report = Report()
    source = open_source(duckdb_path)
    try:
        prepare_target(url, replace=replace)
        open_store(url).dispose()  # the schema, as the product makes it: migrated to the head
        order = [t.name for t in schema.metadata.sorted_tables]  # foreign-key order
        have = source_columns(source)
        counts = {t: int(source.execute(f"SELECT count(*) FROM {_q(t)}").fetchall()[0][0])
                  for t in order if t in have}  # fmt: skip
        # one transaction: a copy that fails leaves the database as migrated, and each table
        # emptied in it takes COPY FREEZE (its rows written frozen and visible to all, as a
        # VACUUM would leave them, which index-only scans need)
        with raw_connection(url) as pg:
            want = target_columns(pg)
            check_tables(order, have, want)
            shape = index_shape(pg)
            filled = [t for t in order if counts[t]]
            constraints, indexes = droppable(pg, filled) if rebuild_indexes else ([], [])
            pg.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
            clock = time.perf_counter()
            for definition in indexes:
                pg.execute(f"DROP INDEX {_index_name(definition)}")
            for table, name, _ in constraints:
                pg.execute(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(name)}")
            report.drop_indexes_s = time.perf_counter() - clock

            clock = time.perf_counter()
            with progress(quiet) as bar:
                for table in order:
                    tic = time.perf_counter()
                    pg.execute(f"TRUNCATE {_q(table)}")  # what the migrations put in, if any
                    if counts[table]:
                        task = bar.add_task(table, total=counts[table])
                        query = select_sql(table, want[table], have[table])
                        for rows in copy_table(pg, table, want[table], source, query, batch_rows):
                            bar.advance(task, rows)
                    report.tables.append(
                        Copied(table, counts[table], -1, time.perf_counter() - tic)
                    )
            report.copy_s = time.perf_counter() - clock

            clock = time.perf_counter()
            made = [
                f"ALTER TABLE {_q(t)} ADD CONSTRAINT {_q(n)} {d}" for t, n, d in constraints
            ] + indexes
            with progress(quiet or not made) as bar:
                task = bar.add_task("indexes", total=len(made))
                for statement in made:
                    pg.execute(statement)
                    bar.advance(task)
            report.indexes_s = time.perf_counter() - clock
            report.indexes_rebuilt = len(made)
            if index_shape(pg) != shape:
                raise CopyError("the indexes and constraints differ from the migrated schema's")
            report.sequences = set_sequences(pg, source)
            pg.commit()

            clock = time.perf_counter()
            pg.autocommit = True
            pg.execute("ANALYZE")
            report.analyze_s = time.perf_counter() - clock
            for copied in report.tables:
                found = pg.execute(f"SELECT count(*) FROM {_q(copied.table)}").fetchone()
                copied.target_rows = int(found[0])
    finally:
        source.close()
    report.total_s = time.perf_counter() - started
    return report


def copy_table(
    pg: Any, table: str, columns: list[str], source: Any, query: str, batch_rows: int
) -> Iterator[int]:
    """Load the rows of the DuckDB ``query`` into ``table`` by one ``COPY``, which the
    transaction emptied it before (``FREEZE``); the rows of each batch sent."""
    from psycopg.copy import QueuedLibpqWriter

    names = ", ".join(_q(c) for c in columns)
    statement = f"COPY {_q(table)} ({names}) FROM STDIN WITH (FORMAT csv, FREEZE)"
    cur = pg.cursor()
    # the rows are sent by a thread of psycopg's while the next batch is read and written
    with cur, cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for data, rows in csv_batches(source, query, batch_rows):
            copy.write(data)
            yield rows


def check_tables(
    order: list[str], have: dict[str, dict[str, str]], want: dict[str, list[str]]
) -> None:
    """Fail unless both sides hold the schema's tables with the same columns."""
    tables = set(order)
    for side, found in (("DuckDB", set(have)), ("PostgreSQL", set(want))):
        missing = tables - found
        extra = found - tables - {"alembic_version"}
        if missing or extra:
            raise CopyError(
                f"{side} tables differ from the schema's: missing {missing}, extra {extra}"
            )
    for table in order:
        if set(have[table]) != set(want[table]):
            raise CopyError(
                f"{table}: DuckDB columns {sorted(have[table])} differ from PostgreSQL's "
                f"{sorted(want[table])}"
            )


def csv_batches(source: Any, query: str, batch_rows: int) -> Iterator[tuple[bytes, int]]:
    """The rows of ``query`` as CSV, a batch of at most ``batch_rows`` rows at a time."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    reader = source.sql(query).to_arrow_reader(batch_rows)
    for batch in reader:
        if batch.num_rows == 0:
            continue
        sink = pa.BufferOutputStream()
        pacsv.write_csv(batch, sink, write_options=options)
        yield sink.getvalue().to_pybytes(), batch.num_rows


def _index_name(definition: str) -> str:
    """The quoted name of the index ``CREATE [UNIQUE] INDEX name ON ...`` makes."""
    words = definition.split(" ON ", 1)[0].split()
    return words[-1]


def set_sequences(pg: Any, source: Any) -> dict[str, int]:
    """Set each sequence past DuckDB's same sequence and the largest id it numbers; the value
    each now gives next."""
    last = {
        str(name): value
        for name, value in source.execute(
            "SELECT sequence_name, last_value FROM duckdb_sequences() "
            "WHERE database_name = current_database()"
        ).fetchall()
    }
    names = [
        r[0]
        for r in pg.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    ]
    owned = {
        r[0]: (r[1], r[2])
        for r in pg.execute(
            "SELECT s.relname, t.relname, a.attname FROM pg_depend d "
            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
            "WHERE d.deptype IN ('a', 'i')"
        ).fetchall()
    }  # serial and identity columns: none in this schema, set all the same
    following: dict[str, int] = {}
    for name in names:
        columns = SEQUENCE_COLUMNS.get(name, ()) + ((owned[name],) if name in owned else ())
        if not columns and name not in last:
            raise CopyError(f"sequence {name}: neither DuckDB's nor a column it numbers is known")
        highest = [int(last[name])] if last.get(name) is not None else []
        for table, column in columns:
            top = pg.execute(f"SELECT max({_q(column)}) FROM {_q(table)}").fetchone()[0]
            if top is not None:
                highest.append(int(top))
        if highest and max(highest) > 0:
            pg.execute("SELECT setval(%s, %s, true)", (name, max(highest)))
            following[name] = max(highest) + 1
        else:
            following[name] = 1
    return following


# -- the command ---------------------------------------------------------------------------------


def link_demo(duckdb_path: Path, world_dir: Path) -> Path:
    """``world_dir/demo`` a link to the demo folder beside the DuckDB file."""
    demo = duckdb_path.resolve().parent / "demo"
    if not (demo / "keys.env").is_file():
        raise CopyError(f"{demo} holds no keys.env: not a built world's demo folder")
    world_dir.mkdir(parents=True, exist_ok=True)
    link = world_dir / "demo"
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise CopyError(f"{link} exists and is not a link: move it away first")
    link.symlink_to(demo, target_is_directory=True)
    return link


def print_report(report: Report, console: Console) -> None:
    table = Table(title="DuckDB world -> PostgreSQL")
    for name in ("table", "DuckDB rows", "PostgreSQL rows", "seconds", "rows/s"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for t in sorted(report.tables, key=lambda t: -t.source_rows):
        style = None if t.source_rows == t.target_rows else "bold red"
        rate = f"{t.source_rows / t.seconds:,.0f}" if t.source_rows and t.seconds else ""
        table.add_row(
            t.table, f"{t.source_rows:,}", f"{t.target_rows:,}", f"{t.seconds:.2f}", rate,
            style=style,
        )  # fmt: skip
    targets = sum(t.target_rows for t in report.tables)
    table.add_row(
        "all tables", f"{report.rows:,}", f"{targets:,}", f"{report.copy_s:.2f}",
        f"{report.rows / max(report.copy_s, 1e-9):,.0f}", style="bold",
    )  # fmt: skip
    console.print(table)
    console.print(
        f"indexes: dropped in {report.drop_indexes_s:.2f} s, {report.indexes_rebuilt} made "
        f"again in {report.indexes_s:.2f} s (equal to the migrated schema's); ANALYZE "
        f"{report.analyze_s:.2f} s; total {report.total_s:.2f} s, "
        f"{report.rows / max(report.total_s, 1e-9):,.0f} rows/s"
    )
    console.print(
        "sequences, next value: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(report.sequences.items()))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duckdb", type=Path, required=True, help="the world's DuckDB file")
    parser.add_argument(
        "--postgres", required=True, help="postgresql+psycopg://user@host:port/NAME"
    )
    parser.add_argument(
        "--replace", action="store_true", help="drop the database first if it exists"
    )
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--indexes", choices=("rebuild", "keep"), default="rebuild")
    parser.add_argument("--maintenance-work-mem", default="256MB")
    parser.add_argument(
        "--world-dir", type=Path, help="make DIR/demo a link to the world's demo folder"
    )
    args = parser.parse_args()
    console = Console()
    try:
        report = copy_world(
            args.duckdb,
            args.postgres,
            replace=args.replace,
            batch_rows=args.batch_rows,
            rebuild_indexes=args.indexes == "rebuild",
            maintenance_work_mem=args.maintenance_work_mem,
        )
        print_report(report, console)
        if not report.equal:
            raise CopyError("the row counts differ (in red above): the copy is not the world")
        if args.world_dir:
            link = link_demo(args.duckdb, args.world_dir)
            name = sa.engine.make_url(args.postgres).database
            console.print(f"{link} -> {link.resolve()}; measure with:")
            console.print(
                f"  python benchmarks/bench_workers.py --world {args.world_dir} "
                f"--world-db {name} --customers N",
                soft_wrap=True,
            )
    except CopyError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
