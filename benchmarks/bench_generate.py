"""Generation of the demo world at several sizes: seconds, peak memory, rows and bytes.

Each size runs in a fresh process so its peak resident memory (``ru_maxrss``) is its own.

    python benchmarks/bench_generate.py [--customers 50000 1000000] [--seed 7] [--json]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table


def run(customers: int, seed: int) -> dict[str, Any]:
    from surmesure.world import Spec, generate

    with tempfile.TemporaryDirectory() as folder:
        clock = time.perf_counter()
        manifest = generate(Spec(customers, seed=seed), Path(folder))
        seconds = time.perf_counter() - clock
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
    return {
        "customers": customers,
        "seconds": round(seconds, 2),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rows": sum(f["rows"] for f in manifest["files"]),
        "order_lines": manifest["truth"]["order_lines"],
        "megabytes": round(size / 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for customers in args.customers:
        with ProcessPoolExecutor(max_workers=1) as pool:
            results.append(pool.submit(run, customers, args.seed).result())
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title="surmesure generate")
    for column in ("customers", "seconds", "peak MB", "rows", "order lines", "MB on disk"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            f"{r['customers']:,}",
            f"{r['seconds']:.1f}",
            f"{r['peak_mb']:,}",
            f"{r['rows']:,}",
            f"{r['order_lines']:,}",
            f"{r['megabytes']:,}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
