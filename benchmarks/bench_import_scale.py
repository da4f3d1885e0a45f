"""``surmesure import customers`` of a generated file of 100,000 and 1,000,000 rows: rows per
second and peak resident memory, this checkout beside another commit's code.

Each import runs in a fresh process (its own ``ru_maxrss``) on a fresh DuckDB store, migrated
before the clock starts. The file is written by DuckDB: one customer a row with an id, an
e-mail, names, a birth date, a city and a postcode, and one row in 1,000 refused (an e-mail
without a domain). Rates are per second of the child's CPU time (user + system), which
other work on the machine disturbs less than the wall clock; both are printed.

    python benchmarks/bench_import_scale.py [--rows 100000 1000000] [--baseline REF]
        [--baseline-max-rows 100000] [--chunk 50000] [--json]

The code of ``--baseline`` runs only up to ``--baseline-max-rows`` (a whole-file import of a
million rows may not fit the machine: its memory grows with the file).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import orjson
from rich.console import Console
from rich.table import Table

from gitref import HEAD_SRC, checkout, describe, run_child

CHILD = """
import inspect, json, resource, sys, time
from pathlib import Path
import surmesure
from surmesure.collect.importer import import_file
from surmesure.store import open_store

url, path, chunk = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
store = open_store(url)
try:
    options = {}
    if "chunk_rows" in inspect.signature(import_file).parameters:
        options["chunk_rows"] = chunk
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = import_file(store, "customers", path, **options)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
finally:
    store.dispose()
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(json.dumps({
    "package": surmesure.__file__,
    "rows_read": result.rows_read,
    "accepted": result.rows_accepted,
    "quarantined": result.rows_quarantined,
    "chunks": getattr(result, "chunks", 1),
    "seconds": seconds,
    "cpu_seconds": cpu,
    "peak_mb": after.ru_maxrss / 1024,
}))
"""


def write_customers(path: Path, rows: int) -> None:
    """``rows`` customers as CSV; every 1,000th e-mail has no domain."""
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (
              SELECT 'C' || i AS customer_id,
                     CASE WHEN i % 1000 = 999 THEN 'nobody' ELSE 'p' || i || '@example.com' END
                       AS email,
                     'First' || (i % 5000) AS first_name,
                     'Last' || (i % 20000) AS last_name,
                     CAST(DATE '1950-01-01' + CAST(i % 18000 AS INTEGER) AS VARCHAR)
                       AS birth_date,
                     CASE i % 3 WHEN 0 THEN 'f' WHEN 1 THEN 'm' ELSE 'x' END AS gender,
                     'City' || (i % 700) AS city,
                     lpad(CAST(i % 95000 AS VARCHAR), 5, '0') AS postcode
              FROM range({rows}) r(i)
            ) TO '{path}' (HEADER, DELIMITER ',')"""
        )


def run(src: Path, path: Path, chunk: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="surmesure-bench-import-") as folder:
        url = f"duckdb:///{Path(folder) / 'bench.duckdb'}"
        migrate = "import json, surmesure, sys; from surmesure.store import open_store; "
        migrate += "open_store(sys.argv[1]).dispose(); "
        migrate += "print(json.dumps({'package': surmesure.__file__}))"
        run_child(src, migrate, url)
        result = run_child(src, CHILD, url, str(path), str(chunk))
    result["rows_per_cpu_s"] = result["rows_read"] / max(result["cpu_seconds"], 1e-9)
    result["rows_per_s"] = result["rows_read"] / max(result["seconds"], 1e-9)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--baseline", help="a commit to compare with (e.g. main)")
    parser.add_argument("--baseline-max-rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="records a transaction")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="surmesure-bench-files-") as folder:
        files = {n: Path(folder) / f"customers_{n}.csv" for n in args.rows}
        for n, path in files.items():
            write_customers(path, n)
        head = f"HEAD {describe('HEAD')}"
        for n, path in files.items():
            results[f"{head} {n:,}"] = run(HEAD_SRC, path, args.chunk)
        if args.baseline:
            with checkout(args.baseline) as src:
                name = f"base {describe(args.baseline)}"
                for n, path in files.items():
                    if n <= args.baseline_max_rows:
                        results[f"{name} {n:,}"] = run(src, path, args.chunk)
    if args.baseline:
        for n in args.rows:
            ours = results[f"{head} {n:,}"]
            theirs = next(
                (r for k, r in results.items() if k.endswith(f" {n:,}") and r is not ours), None
            )
            if theirs is not None:
                ours["peak_vs_baseline"] = ours["peak_mb"] / theirs["peak_mb"]
                ours["rate_vs_baseline"] = ours["rows_per_cpu_s"] / theirs["rows_per_cpu_s"]
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title="import customers (generated CSV)")
    columns = ("run, rows", "chunks", "accepted", "quarantined", "s", "CPU s", "rows/CPU s",
               "peak RSS MB", "peak x base", "rate x base")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "run, rows" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['chunks']:,}",
            f"{r['accepted']:,}",
            f"{r['quarantined']:,}",
            f"{r['seconds']:.1f}",
            f"{r['cpu_seconds']:.1f}",
            f"{r['rows_per_cpu_s']:,.0f}",
            f"{r['peak_mb']:,.0f}",
            f"{r['peak_vs_baseline']:.2f}" if "peak_vs_baseline" in r else "",
            f"{r['rate_vs_baseline']:.2f}" if "rate_vs_baseline" in r else "",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
