"""Import of Online Retail II (525,461 lines, CSV.GZ) through validation, storage and
unification, on DuckDB and on PostgreSQL, side by side.

Each measurement runs in a fresh process so its peak resident memory (``ru_maxrss``) is its
own. The baseline is DuckDB's own ``read_csv`` of the same file into a table, with no
validation nor identity: the ratio says what the import adds to merely loading the file.

    python benchmarks/bench_import.py [--file PATH] [--postgres URL] [--json]

PostgreSQL: a fresh database is created on the server (default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared/datasets/online_retail_II/online_retail_II_2009_2010.csv.gz"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(path: str) -> dict[str, Any]:
    """DuckDB ``read_csv`` of the file into a table of an in-memory database."""
    import duckdb

    start = time.perf_counter()
    with duckdb.connect() as con:
        con.execute("CREATE TABLE lines AS SELECT * FROM read_csv(?)", [path])
        row = con.execute("SELECT count(*) FROM lines").fetchone()
    seconds = time.perf_counter() - start
    return {"rows": int(row[0]) if row else 0, "seconds": seconds, "peak_mb": _peak_mb()}


def run_import(url: str, path: str) -> dict[str, Any]:
    """``import_file`` with the online-retail preset into the (empty) store at ``url``."""
    from surmesure.collect.importer import import_file
    from surmesure.store import open_store

    store = open_store(url)
    try:
        start = time.perf_counter()
        result = import_file(store, "orders", Path(path), preset="online-retail")
        seconds = time.perf_counter() - start
    finally:
        store.dispose()
    return {
        "rows": result.rows_accepted,
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "new_people": result.new_people,
    }


def _in_child(func: Any, *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        result: dict[str, Any] = pool.submit(func, *args).result()
    return result


def _postgres(admin_url: str, path: str) -> dict[str, Any]:
    import sqlalchemy as sa

    name = f"surmesure_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        # the schema is created before timing: the store of a running deployment exists
        _in_child(_migrate, url)
        return _in_child(run_import, url, path)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> dict[str, Any]:
    from surmesure.store import open_store

    open_store(url).dispose()
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--postgres", default=DEFAULT_PG, help="admin URL of the server")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    path = str(args.file)

    results: dict[str, dict[str, Any]] = {"baseline duckdb read_csv": _in_child(baseline, path)}
    with tempfile.TemporaryDirectory() as folder:
        url = f"duckdb:///{Path(folder) / 'bench.duckdb'}"
        _in_child(_migrate, url)
        results["import duckdb"] = _in_child(run_import, url, path)
    results["import postgresql"] = _postgres(args.postgres, path)

    base = results["baseline duckdb read_csv"]["seconds"]
    for result in results.values():
        result["lines_per_s"] = result["rows"] / result["seconds"]
        result["vs_baseline"] = result["seconds"] / base
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"import of {args.file.name}")
    for column in ("run", "lines", "seconds", "lines/s", "peak RSS (MB)", "x baseline"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['rows']:,}",
            f"{r['seconds']:.2f}",
            f"{r['lines_per_s']:,.0f}",
            f"{r['peak_mb']:,.0f}",
            f"{r['vs_baseline']:.1f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
