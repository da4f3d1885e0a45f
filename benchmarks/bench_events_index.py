"""What PostgreSQL's covering index of events (``ix_events_person_id_occurred_at``, migration
0038) gains a segment's size and costs collection, both measured in one run on one database,
the index dropped and made again between rounds so the machine's load falls on both alike.

The world is the segment benchmark's (``segment_world_pg.py``: ``--people`` persons, four
events each); the segment is its 5-condition one. Per round and state (index on, off):

- segment size: wall time of ``membership.size`` (PostgreSQL's default plan, parallel workers
  allowed), then the processor time of the one backend that runs the same count with parallel
  workers off (read from ``/proc``: steadier than the wall time on a busy machine);
- collection: ``--events`` events written through ``write_events`` in transactions of 100 (as
  ``bench_collect.py`` does directly), appended to the world's events: the rate, this
  process's processor time and the backends' (where the index is kept up) per event.

    createdb index_bench && python benchmarks/bench_events_index.py \\
        --url postgresql+psycopg://postgres@127.0.0.1/index_bench --people 200000
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from bench_collect import make_bodies
from bench_segment import NOW, five_conditions
from segment_world_pg import generate_postgres, rows
from surmesure.collect.events import write_events
from surmesure.collect.importer import utcnow
from surmesure.collect.segment import validate_messages
from surmesure.segment import membership
from surmesure.store import Store, open_store

INDEX = "ix_events_person_id_occurred_at"
CREATE = f"CREATE INDEX {INDEX} ON events (person_id, occurred_at) INCLUDE (type, event)"


def cpu_of(pids: list[int]) -> float:
    """Processor seconds (user and system) the processes ``pids`` have used so far."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def backends(store: Store) -> list[int]:
    with store.connect() as conn:
        return [
            int(p)
            for (p,) in conn.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        ]


def set_index(store: Store, on: bool) -> None:
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sa.text(f"DROP INDEX IF EXISTS {INDEX}"))
        if on:
            conn.execute(sa.text(CREATE))
        # as autovacuum keeps it: the visibility map set, so an index-only scan skips the table
        conn.execute(sa.text("VACUUM ANALYZE events"))


def segment_size(store: Store) -> dict[str, float]:
    definition = five_conditions()
    membership.size(store, definition, NOW, {})  # warm the cache
    start = time.perf_counter()
    members = membership.size(store, definition, NOW, {})
    wall = time.perf_counter() - start
    query = membership.query(store, definition, NOW, {}).subquery()
    with store.connect() as conn:
        conn.execute(sa.text("SET max_parallel_workers_per_gather = 0"))
        pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        before = cpu_of([pid])
        serial = int(conn.execute(sa.select(sa.func.count()).select_from(query)).scalar_one())
        cpu = cpu_of([pid]) - before
        conn.execute(sa.text("RESET max_parallel_workers_per_gather"))
    assert serial == members, (serial, members)
    return {"members": members, "wall_s": wall, "backend_cpu_s": cpu}


def collect(store: Store, events: int) -> dict[str, float]:
    bodies = [orjson.loads(b)["batch"] for b in make_bodies(events, uuid.uuid4().hex[:8])]
    with store.begin() as conn:  # a pooled connection, so the backend is there to measure
        conn.execute(sa.text("SELECT 1"))
    pids = backends(store)
    backend, own, start = cpu_of(pids), time.process_time(), time.perf_counter()
    for batch in bodies:
        accepted, _ = validate_messages(batch)
        with store.begin() as conn:
            write_events(store, conn, accepted, source="web", received_at=utcnow())
    wall = time.perf_counter() - start
    own = time.process_time() - own
    backend = cpu_of(sorted(set(pids) | set(backends(store)))) - backend
    return {
        "events_per_s": events / wall,
        "process_cpu_us": own / events * 1e6,
        "backend_cpu_us": backend / events * 1e6,
    }


def median_of(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database (generated if empty)")
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=20_000, help="collected per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    store = open_store(args.url)
    if rows(store)["people"] == 0:
        start = time.perf_counter()
        generate_postgres(store, args.people)
        print(f"generated {args.people:,} people in {time.perf_counter() - start:.1f} s")
    with store.begin() as conn:  # the world's ids were written without the sequence
        conn.execute(sa.text("SELECT setval('person_id_seq', (SELECT max(person_id) FROM people))"))
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in rows(store).items()))
    runs: dict[bool, dict[str, list[dict[str, float]]]] = {
        on: {"segment": [], "collect": []} for on in (True, False)
    }
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("segment", lambda: segment_size(store)),
        ("collect", lambda: collect(store, args.events)),
    ]
    for turn in range(args.rounds):
        for on in (True, False) if turn % 2 == 0 else (False, True):
            set_index(store, on)
            for name, step in steps:
                result = step()
                runs[on][name].append(result)
                print(f"round {turn + 1} index {'on ' if on else 'off'} {name}: {result}")
    set_index(store, True)
    print(f"\nmedians of {args.rounds} rounds ({rows(store)['events']:,} events at the end)")
    for on in (True, False):
        seg, col = runs[on]["segment"], runs[on]["collect"]
        print(
            f"index {'on ' if on else 'off'}: segment size {median_of(seg, 'wall_s'):.3f} s wall, "
            f"{median_of(seg, 'backend_cpu_s'):.3f} s backend CPU (serial); collection "
            f"{median_of(col, 'events_per_s'):,.0f} events/s, "
            f"{median_of(col, 'process_cpu_us'):.1f} µs/event process CPU, "
            f"{median_of(col, 'backend_cpu_us'):.1f} µs/event backend CPU"
        )
    store.dispose()


if __name__ == "__main__":
    main()
