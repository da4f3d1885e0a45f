"""The build of a generated world (``surmesure generate``) into a fresh DuckDB store, as
``surmesure demo`` imports it: every file in dependency order, then the web events, then
(``--derive``) the metrics. For each step: CPU seconds, the wall clock, the resident memory
at its end and its peak during the step (sampled every 0.2 s), the bytes the process wrote
to disk (``/proc/self/io``: checkpoints rewrite indexes), the store's file size at its end and
the rows read; this checkout beside another commit's code, each in a fresh process on its own
store.

    python benchmarks/bench_world_build.py --world DIR [--baseline REF] [--derive]
        [--only customers_crm.csv orders.csv.gz ...] [--json]

Generate the world first (``surmesure generate --customers 200000 --out DIR``). CPU time is
what to compare on a loaded machine; peak memory is the figure a bounded build holds down.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from gitref import HEAD_SRC, checkout, describe, run_child

CHILD = """
import json, os, resource, sys, threading, time
from datetime import date
from pathlib import Path
import surmesure
from surmesure.collect.events import ingest_file
from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.store import open_store
from surmesure.world import IMPORTS, WEB_EVENTS, read_manifest
from surmesure.world.web import IDENTITY_SECRET

folder, url, derive_too = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
only = set(sys.argv[4].split(",")) if sys.argv[4] else None
page = os.sysconf("SC_PAGE_SIZE")

def written_mb():
    with open("/proc/self/io") as handle:
        for line in handle:
            if line.startswith("write_bytes"):
                return int(line.split()[1]) / 2**20
    return 0.0

def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * page / 2**20

peak = [0.0]
def sample():
    while True:
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.2)
threading.Thread(target=sample, daemon=True).start()

steps = []
def step(name, work):
    peak[0] = rss_mb()
    before = resource.getrusage(resource.RUSAGE_SELF)
    written = written_mb()
    start = time.perf_counter()
    rows = work()
    after = resource.getrusage(resource.RUSAGE_SELF)
    steps.append({
        "step": name,
        "rows": rows,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "written_mb": written_mb() - written,
        "end_mb": rss_mb(),
        "peak_mb": max(peak[0], rss_mb()),
        "file_mb": os.path.getsize(url.split(":///", 1)[1]) / 2**20,
    })
    print(json.dumps(steps[-1]), file=sys.stderr, flush=True)

store = open_store(url)
try:
    for item in IMPORTS:
        if only is None or item.file in only:
            step(item.file, lambda item=item: import_file(
                store, item.kind, folder / item.file, source=item.source).rows_read)
    settings = get_settings().model_copy(update={"identity_secret": IDENTITY_SECRET})
    if only is None or WEB_EVENTS in only:
        step(WEB_EVENTS, lambda: ingest_file(
            store, folder / WEB_EVENTS, source="web", settings=settings)["received"])
    if derive_too:
        from surmesure.derive.run import derive
        end = date.fromisoformat(read_manifest(folder)["spec"]["end"])
        step("derive", lambda: derive(store, as_of=end).people)
finally:
    store.dispose()
print(json.dumps({
    "package": surmesure.__file__,
    "steps": steps,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def build(src: Path, world: Path, derive: bool, only: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="surmesure-world-") as folder:
        url = f"duckdb:///{folder}/world.duckdb"
        return run_child(src, CHILD, str(world), url, "1" if derive else "0", ",".join(only))


def show(console: Console, runs: dict[str, dict[str, Any]]) -> None:
    table = Table(
        title="world build: CPU seconds, peak resident MB, MB written to disk, file MB after"
    )
    table.add_column("step")
    for name in runs:
        table.add_column(f"{name} cpu s", justify="right")
        table.add_column(f"{name} peak MB", justify="right")
        table.add_column(f"{name} written MB", justify="right")
        table.add_column(f"{name} file MB", justify="right")
    names = [s["step"] for s in next(iter(runs.values()))["steps"]]
    for i, step in enumerate(names):
        cells = []
        for run in runs.values():
            s = run["steps"][i]
            cells += [f"{s['cpu_seconds']:.1f}", f"{s['peak_mb']:.0f}", f"{s['written_mb']:.0f}"]
            cells.append(f"{s.get('file_mb', 0):.0f}")
        table.add_row(step, *cells)
    totals = []
    for run in runs.values():
        cpu = sum(s["cpu_seconds"] for s in run["steps"])
        written = sum(s["written_mb"] for s in run["steps"])
        last = run["steps"][-1].get("file_mb", 0)
        totals += [f"{cpu:.1f}", f"{run['peak_mb']:.0f}", f"{written:.0f}", f"{last:.0f}"]
    table.add_row("whole build", *totals)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, required=True, help="a generated world's folder")
    parser.add_argument("--baseline", default=None, help="a commit to compare with")
    parser.add_argument("--derive", action="store_true", help="derive the metrics too")
    parser.add_argument("--only", nargs="*", default=[], help="these files only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs: dict[str, dict[str, Any]] = {}
    if args.baseline:
        with checkout(args.baseline) as src:
            runs[describe(args.baseline)] = build(src, args.world, args.derive, args.only)
    runs["HEAD"] = build(HEAD_SRC, args.world, args.derive, args.only)
    if args.json:
        print(orjson.dumps(runs).decode())
    else:
        show(Console(), runs)


if __name__ == "__main__":
    main()
