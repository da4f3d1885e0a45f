"""What reading a send's audiences costs (``deliver.audiences.load_audiences``): the people of
``bench_send``'s campaign (a trait, two segments, derived metrics for the loyalty points and the
CLV tier), read in batches of ``--batch`` as a send reads them, on DuckDB or on PostgreSQL
(``--url``).

Each measurement runs in a child process whose ``PYTHONPATH`` starts with the code measured, so
``--baseline REF`` times a commit's code (a temporary ``git worktree``, removed afterwards) on
the same store, the two alternating round by round so that the machine's load falls on both.
A figure is the best of ``--repeats`` passes: people read per second, and the processor time
per 1,000 people (the store's threads included: steadier than the rate on a loaded machine).

    python benchmarks/bench_audiences.py [--people 20000] [--batch 2000] [--repeats 3]
        [--rounds 3] [--url postgresql+psycopg://...] [--baseline REF] [--json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bench_campaign_send import T0, _fill
from bench_send import _shop
from gitref import run_child, sides
from surmesure.store import open_store

CHILD = """
import sys, time, orjson, surmesure
from datetime import datetime
from surmesure.deliver.audiences import load_audiences
from surmesure.store import Store
url, people, batch, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
now = datetime.fromisoformat(sys.argv[5])
store = Store(url)
ids = list(range(1, people + 1))
best, cpu, found = float("inf"), float("inf"), 0
for _ in range(repeats):
    start, used = time.perf_counter(), time.process_time()
    with store.connect() as conn:
        for at in range(0, people, batch):
            read = load_audiences(conn, ids[at:at + batch], now, 365.0, channel="email",
                                  traits={"city"}, metrics=frozenset({"points", "clv_tier"}))
            found += sum(1 for a in read.values() if a.traits and a.metrics)
    best = min(best, time.perf_counter() - start)
    cpu = min(cpu, time.process_time() - used)
store.dispose()
sys.stdout.write(orjson.dumps({"seconds": best, "cpu": cpu, "found": found // repeats,
                               "package": surmesure.__file__}).decode())
"""


def measure(src: Path, url: str, people: int, batch: int, repeats: int) -> dict[str, Any]:
    """One child process timing the code of ``src`` on the store at ``url``."""
    result = run_child(src, CHILD, url, str(people), str(batch), str(repeats), T0.isoformat())
    if result["found"] != people:
        raise RuntimeError(f"{src}: {result['found']} of {people} people read whole")
    return result


def compare(
    sides: dict[str, Path], url: str, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Per side, the best rate (people/s) and the least processor time per 1,000 people (ms,
    the store's threads included) over the rounds; sides alternate round by round."""
    best = {name: {"people_per_s": 0.0, "cpu_ms_per_1000": float("inf")} for name in sides}
    order = list(sides)
    for turn in range(args.rounds):
        for name in order if turn % 2 == 0 else order[::-1]:
            got = measure(sides[name], url, args.people, args.batch, args.repeats)
            mine = best[name]
            mine["people_per_s"] = max(mine["people_per_s"], args.people / got["seconds"])
            cpu = 1000 * got["cpu"] / args.people * 1000
            mine["cpu_ms_per_1000"] = min(mine["cpu_ms_per_1000"], cpu)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="an empty store to fill (default: a DuckDB file)")
    parser.add_argument("--baseline", metavar="REF", help="a commit to compare with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"duckdb:///{Path(folder) / 'audiences.duckdb'}"
        store = open_store(url)
        _fill(store, args.people)
        _shop(store, args.people)
        store.dispose()
        with sides(args.baseline) as code:
            rates = compare(code, url, args)
    if args.json:
        sys.stdout.write(orjson.dumps(rates).decode() + "\n")
        return
    table = Table("code", "people/s", "ratio", "CPU ms per 1,000 people", "ratio")
    first = next(iter(rates.values()))
    for name, got in rates.items():
        rate, cpu = got["people_per_s"], got["cpu_ms_per_1000"]
        table.add_row(
            name,
            f"{rate:,.0f}",
            f"{rate / first['people_per_s']:.2f}",
            f"{cpu:.1f}",
            f"{cpu / first['cpu_ms_per_1000']:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
