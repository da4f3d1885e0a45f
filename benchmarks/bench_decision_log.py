"""The decision log's writes on DuckDB: what they cost with DuckDB's own checkpoints (every
16 MB of write-ahead log) against a store's (256 MB unless the store's URL names its own
``checkpoint_threshold``), in the same run.

A demo store (``surmesure demo --customers N``) is built once and copied for each mode; then
``--decisions`` decisions (three in four for a known customer, with one to three exposures
each; sealed as a server seals them) are queued and flushed by
:class:`~surmesure.decide.decision_log.DecisionLog` in batches of ``--batch`` (a server at
1,000 decisions/s flushing every 250 ms writes 250 at a time). Per quarter of the run: the CPU
time of the flushing thread and of every other thread of the process (DuckDB's own workers),
and the longest flush (a checkpoint shows as a flush of a second or more). The last lines give
the ratio of the two modes' CPU per decision.

    python benchmarks/bench_decision_log.py [--customers 5000] [--decisions 100000]
        [--batch 250] [--checkpoint-mb 256]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from surmesure.decide.decision_log import DecisionLog, encoded
from surmesure.store import open_store

EXPLANATION = {
    "person": "known customer, loyal since 2021: first name from the CRM",
    "content": {"variant": {"name": "loyal", "reason": "in segment loyal_customers"}},
    "offers": [{"offer": "spring", "why": "not shown in the last 7 days"}],
    "products": {"personalized": True, "reason": "recommended for this person"},
}


def build(folder: Path, customers: int) -> Path:
    path = folder / "demo.duckdb"
    env = {"SURMESURE_DATABASE_URL": f"duckdb:///{path}"}
    command = [sys.executable, "-m", "surmesure.cli.main", "demo", "--customers",
               str(customers), "--out", str(folder / "demo"), "--json"]  # fmt: skip
    subprocess.run(command, env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)
    return path


def decision(rng: random.Random, people: list[int], at: datetime) -> tuple[list[Any], Any]:
    pid = rng.choice(people) if rng.random() < 0.75 else None
    contents = [f"content_{i}" for i in range(30)]
    record = {
        "decision_id": uuid.uuid4().hex,
        "person_id": pid,
        "placement": "home_banner",
        "context": {"device": "mobile", "channel": "web"},
        "result": {"content": {"id": rng.choice(contents), "text": "Bonjour Marie"}},
        "explanation": EXPLANATION,
        "decided_at": at,
    }
    shown = [] if pid is None else rng.sample(contents, rng.randint(1, 3))
    exposures = [
        {"exposure_id": uuid.uuid4().hex, "person_id": pid, "node_id": None, "content_id": c,
         "channel": "web", "placement": "home_banner", "shown_at": at, "expires_at": None}
        for c in shown
    ]  # fmt: skip
    return exposures, encoded(record)


def run(source: Path, folder: Path, checkpoint_mb: int, decisions: int, batch: int) -> float:
    """Flush ``decisions`` into a copy of ``source``; print each quarter; CPU per decision
    (ms)."""
    path = folder / f"log-{checkpoint_mb}.duckdb"
    shutil.copy(source, path)
    store = open_store(f"duckdb:///{path}?checkpoint_threshold={checkpoint_mb or 16}MB")
    log = DecisionLog(store, threading.RLock())
    with store.connect() as conn:
        people = [
            int(r[0])
            for r in conn.execute(sa.text("SELECT person_id FROM people WHERE merged_into IS NULL"))
        ]
    rng = random.Random(3)
    at = datetime(2026, 3, 10, 17, 30)
    flushes = decisions // batch
    quarter = max(flushes // 4, 1)
    own = others = total_cpu = 0.0
    longest = 0.0
    label = f"{checkpoint_mb} MB" if checkpoint_mb else "DuckDB's 16 MB"
    for n in range(flushes):
        for _ in range(batch):
            at += timedelta(milliseconds=1)
            log.queue(*decision(rng, people, at))
        thread, process, wall = time.thread_time(), time.process_time(), time.perf_counter()
        log.flush()
        spent_thread = time.thread_time() - thread
        own += spent_thread
        others += time.process_time() - process - spent_thread
        longest = max(longest, time.perf_counter() - wall)
        if (n + 1) % quarter == 0:
            done = (n + 1) * batch
            print(
                f"  {label}: up to {done:,} decisions: flushing thread {own:.2f} s, "
                f"other threads {others:.2f} s, longest flush {longest * 1e3:.0f} ms",
                flush=True,
            )
            total_cpu += own + others
            own = others = longest = 0.0
    store.dispose()
    return total_cpu * 1e3 / (flushes * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--checkpoint-mb", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = build(folder, args.customers)
        default = run(source, folder, 0, args.decisions, args.batch)
        held = run(source, folder, args.checkpoint_mb, args.decisions, args.batch)
    print(f"CPU per decision written, DuckDB's checkpoints: {default:.3f} ms")
    print(f"CPU per decision written, {args.checkpoint_mb} MB: {held:.3f} ms")
    print(f"ratio: {held / default:.2f}x")


if __name__ == "__main__":
    main()
