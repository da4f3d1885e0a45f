"""Journey steps per second through the durable path: ``--people`` people (default 1,000,000)
enrolled in a 6-step journey (send, wait, wait-for-event, branch, send, exit) and moved over 30
days in compressed time, in the store: each batch of due people read, stepped by the engine and
written back (state, log, outbox rows of the sends, not delivered) in one transaction. A tenth
of the people buy on day 3 (a signal, through the same path as the dispatcher's); half live in
Lyon (the branch, a segment-language condition evaluated in SQL per batch).

DuckDB in one process; with ``--postgres URL``, the same run on PostgreSQL with two worker
processes sharing the due rows (``FOR UPDATE SKIP LOCKED``), printed beside it.

    python benchmarks/bench_journeys.py [--people N] [--batch 20000] [--postgres URL]
        [--per-person] [--json]

The worker steps people alike a group at a time (:mod:`surmesure.journeys.columnar`);
``--per-person`` also runs the engine person by person (the reference path), on DuckDB, in the
same run, and prints both.

Target (issue 14): at least 50,000 step transitions/s on DuckDB. On a shared machine the CPU
time of the run (DuckDB, one process) is printed beside the wall time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import sqlalchemy as sa
from rich.console import Console

from surmesure.journeys import engine, published
from surmesure.journeys.document import parse
from surmesure.journeys.entering import enter_people
from surmesure.journeys.published import Versions
from surmesure.journeys.rerouting import signal
from surmesure.journeys.runner import tick
from surmesure.store import Store, open_store, schema

T0 = datetime(2026, 3, 2, 8)
TARGET = 50_000.0
JOURNEY = {
    "name": "bench",
    "entry": {"event": {"name": "Signed Up"}},
    "goal": {"event": "Order Completed"},
    "steps": [
        {"id": "hello", "send": {"channels": {"email": {"text": "Hello"}}}, "next": "pause"},
        {"id": "pause", "wait": {"days": 2}, "next": "watch"},
        {
            "id": "watch",
            "wait_for_event": {"event": "Product Viewed", "timeout_hours": 72},
            "next": "done",
            "timeout": "lyon",
        },
        {
            "id": "lyon",
            "branch": {
                "if": {"trait": {"name": "city", "op": "eq", "value": "Lyon"}},
                "then": "offer",
                "else": "done",
            },
        },
        {"id": "offer", "send": {"channels": {"email": {"text": "Offer"}}}, "next": "done"},
        {"id": "done", "exit": {}},
    ],
}


def _fill(store: Store, people: int) -> None:
    ids = np.arange(1, people + 1, dtype=np.int64)
    at = pa.array([T0] * people, pa.timestamp("us"))
    lyon = ids[ids % 2 == 0]
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            schema.people,
            pa.table(
                {
                    "person_id": ids,
                    "merged_into": pa.nulls(people, pa.int64()),
                    "created_at": at,
                    "updated_at": at,
                }
            ),
        )
        n = lyon.size
        store.bulk_insert(
            conn,
            schema.traits,
            pa.table(
                {
                    "record_key": pa.array([f"c{i}" for i in lyon.tolist()], pa.string()),
                    "name": pa.array(["city"] * n, pa.string()),
                    "person_id": pa.array(lyon),
                    "node_id": pa.array(lyon),
                    "value": pa.array(['"Lyon"'] * n, pa.string()),
                    "source": pa.array(["crm"] * n, pa.string()),
                    "observed_at": pa.array([T0] * n, pa.timestamp("us")),
                    "reliability": pa.array(np.ones(n)),
                }
            ),
        )
    published.publish(store, parse(JOURNEY), T0)


def _timeline() -> list[datetime]:
    return [T0 + timedelta(hours=6 * i) for i in range(1, 4 * 30 + 1)]


def _ticks(
    url: str | Store, batch: int, times: list[datetime], out: Any = None, per_person: bool = False
) -> int:
    """Every step due at ``times``; the transitions made (one worker)."""
    own = not isinstance(url, Store)
    store = open_store(url) if isinstance(url, str) else url
    versions = Versions()
    done = 0
    for now in times:
        while True:
            result = tick(store, now, versions, batch, per_person=per_person)
            done += result.transitions
            if result.stepped < batch:
                break
    if own:
        store.dispose()
    if out is not None:
        out.put(done)
    return done


def _phase(
    store: Store, batch: int, workers: int, times: list[datetime], per_person: bool = False
) -> int:
    """The steps due at ``times``, by ``workers`` processes side by side."""
    if workers == 1:
        return _ticks(store, batch, times, per_person=per_person)
    url = store.url
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    procs = [
        context.Process(target=_ticks, args=(url, batch, times, queue)) for _ in range(workers)
    ]
    for p in procs:
        p.start()
    done = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return int(done)


def run(
    url: str, people: int, batch: int, workers: int, console: Console, per_person: bool = False
) -> dict[str, Any]:
    store = open_store(url)
    start = time.perf_counter()
    _fill(store, people)
    console.print(f"  people: {time.perf_counter() - start:.1f} s", style="dim")
    versions = Versions()
    with store.connect() as conn:
        definition = versions.get(conn, "bench", 1)
    begun = time.perf_counter()
    cpu = time.process_time()
    transitions = 0
    for first in range(1, people + 1, batch):
        chunk = {p: None for p in range(first, min(first + batch, people + 1))}
        with store.begin() as conn:
            entered = enter_people(store, conn, definition, 1, chunk, T0, per_person=per_person)
            transitions += entered.transitions
    buyers = list(range(10, people + 1, 10))
    day3 = T0 + timedelta(days=3)
    timeline = _timeline()
    if workers > 1:
        store.dispose()
    transitions += _phase(store, batch, workers, [t for t in timeline if t < day3], per_person)
    for first in range(0, len(buyers), batch):
        signals = [
            (p, engine.Event("Order Completed"), "order") for p in buyers[first : first + batch]
        ]
        with store.begin() as conn:
            transitions += signal(store, conn, signals, day3, versions).transitions
    if workers > 1:
        store.dispose()
    transitions += _phase(store, batch, workers, [t for t in timeline if t >= day3], per_person)
    elapsed = time.perf_counter() - begun
    cpu = time.process_time() - cpu  # this process's only: the workers' are not counted
    with store.connect() as conn:
        m = schema.messages
        messages = conn.execute(sa.select(sa.func.count()).select_from(m)).scalar_one()
        ended = dict(
            conn.execute(
                sa.select(schema.journey_people.c.reason, sa.func.count()).group_by(
                    schema.journey_people.c.reason
                )
            ).all()
        )
    store.dispose()
    return {
        "people": people,
        "workers": workers,
        "transitions": transitions,
        "seconds": round(elapsed, 2),
        "transitions_per_second": round(transitions / elapsed),
        "cpu_seconds": round(cpu, 2) if workers == 1 else None,
        "transitions_per_cpu_second": round(transitions / cpu) if workers == 1 else None,
        "messages": int(messages),
        "ended": {str(k): int(v) for k, v in ended.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--postgres", default=None, help="A PostgreSQL server URL (admin).")
    parser.add_argument(
        "--per-person", action="store_true", help="Also run the engine person by person."
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=args.json)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        url = f"duckdb:///{Path(folder) / 'bench.duckdb'}"
        console.print(f"DuckDB, {args.people:,} people")
        results["duckdb"] = run(url, args.people, args.batch, 1, console)
    if args.per_person:
        with tempfile.TemporaryDirectory() as folder:
            url = f"duckdb:///{Path(folder) / 'bench.duckdb'}"
            console.print(f"DuckDB, {args.people:,} people, person by person")
            results["duckdb_per_person"] = run(url, args.people, args.batch, 1, console, True)
    if args.postgres:
        name = f"bench_journeys_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = args.postgres.rsplit("/", 1)[0] + "/" + name
        try:
            console.print(f"PostgreSQL, two workers, {args.people:,} people")
            results["postgresql"] = run(url, args.people, args.batch, 2, console)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if args.json:
        print(orjson.dumps(results).decode())
        return
    for store, r in results.items():
        mark = "ok" if store == "postgresql" or r["transitions_per_second"] >= TARGET else "below"
        console.print(
            f"{store}: {r['transitions']:,} transitions in {r['seconds']} s "
            + (f"({r['cpu_seconds']} s of CPU) " if r["cpu_seconds"] else "")
            + "= "
            f"[bold]{r['transitions_per_second']:,}/s[/] ({r['workers']} worker(s), "
            f"target {TARGET:,.0f}/s on DuckDB: {mark}); {r['messages']:,} messages in the "
            f"outbox; ended {r['ended']}"
        )


if __name__ == "__main__":
    main()
