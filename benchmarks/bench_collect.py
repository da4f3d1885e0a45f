"""HTTP collection with ``/v1/batch``: 100 events a call, several concurrent clients, every
answer durable (committed before 200), on DuckDB and on PostgreSQL side by side.

End to end by default: three segments that page, track and identify events change are saved
before the server starts, and the clock (and the server's CPU time) runs from the first call
until the server's dispatcher has delivered every change to every subscriber, real-time
segment membership included (``surmesure dispatch status``, asked over the local channel on
DuckDB, whose file the server owns; straight from the database on PostgreSQL). The rate is then
events from collection to membership. ``--collect-only`` saves no segment and stops the clock
at the last answer, as the collection figure was first measured.

The server runs in its own process (``surmesure serve``, one worker), so its peak resident
memory and its CPU time per event (user and system, every thread: steadier than the rate when
other processes share the machine) are its own; the clients send pre-encoded bodies from this
process with asyncio, so the figure measures the server. The direct figure is the same events
written in this process straight through ``write_events`` in transactions of the same size,
with no HTTP and no grouping: the ratio says what the API costs (or saves, by grouping commits)
against calling the store.

``--baseline REF`` compares with a commit instead: the same load against a server started from
a temporary ``git worktree`` of REF (its ``src`` first on ``PYTHONPATH``, the same virtual
environment), the two servers alternating round by round, each run on a fresh database, so that
the machine's load falls on both alike. It prints both rates (median of the rounds), their
ratio, and the validation micro-benchmark of ``bench_validate`` for both.

``--prefill N`` first stores N events of other devices (with the code under test, changes
deleted) so the server meets a store in use: real-time membership reads what a person did, and
a round that read every event grew with the table.

Measured at 8b36857 against 61f7503 (``--baseline 61f7503 --rounds 3 --events 60000
--postgres none``, DuckDB, a shared machine at load average 4 to 5): the server's CPU 68.0 µs
an event against 92.0 (x0.74), 9,468 events/s against 7,987 (x1.19), the same 9,800
memberships. What it saved was the dispatcher's news to the decision server's cache: the people
of a round were bound one parameter each (a look for new identities of 5,000 people cost
DuckDB 200 ms of CPU, a re-read of 1,000 people 40 ms), and a visitor's pages were news as an
identify is. ``profile_collect.py --threads --raw --segments --events 60000``: the dispatcher
19 µs an event against 44, the event writer 33, the event loop 16, DuckDB's own threads 10.

Measured at 0255c7e against 423303d (``--baseline 423303d --rounds 4 --events 200000
--postgres none``, DuckDB, a shared machine at load average 3 to 5): 10,424 events/s against
8,744 (x1.19; rounds 9,299 to 11,109 against 7,562 to 10,384), the server's CPU 83.8 µs an
event against 102.9 (x0.81), lag 0.19 to 0.32 s against 0.24 to 0.37, the same 9,800
memberships. Where a run's wall time went before (each group commit traced, 100,000 events):
the clients used 1.5 to 1.9 µs of CPU an event, a hundredth of the server's; the event writer
spent 86 to 91% of the run committing, 11 to 14% waiting for a group's first request, and
under 1% lingering or pausing (its waits were not the bound); a commit's time was 40% its
thread's CPU, 30% waiting for a processor the machine's other work held, the rest waiting for
the interpreter lock or DuckDB's threads. The lock was held in 67% of the instants sampled
(``py-spy --gil``): the writer 42%, the requests' reading and validation 40%, the dispatcher
15%. The dispatcher's cost followed its rounds more than its events: a round reads each person
it touches once, and the run's 5,000 devices came back in every round (rests of 0.05 s: 4.5 s
of CPU for 100,000 events, 0.6 s: 2.1 s). It now rests in proportion to a long round
(:mod:`surmesure.dispatch.background`): 3.1 s of CPU per 100,000 events became about 1.7.

    python benchmarks/bench_collect.py [--events 200000] [--clients 32] [--postgres URL|none]
        [--collect-only] [--baseline REF [--rounds 3]] [--prefill N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gitref import HEAD_SRC, checkout, describe, env_for, run_child
from loadgen import exchange, request_bytes

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WRITE_KEY = "bench-key"
PER_CALL = 100
PORT = {"port": 0}
"""The servers' port (``--port``); 0: a free one."""
PAGES = ["/", "/nouveautes", "/magasins", "/panier", "/femme", "/homme"]
SEGMENTS = [
    {"name": "viewers", "where": {"event": {"type": "track", "name": "Product Viewed"}}},
    {"name": "browsers", "where": {"event": {"type": "page", "min_count": 3}}},
    {"name": "known", "where": {"trait": {"name": "email", "op": "exists"}}},
]
"""Segments the events of :func:`make_bodies` change: each page, track and identify call
reaches the real-time membership handler."""
END_TO_END = {"on": True}
"""Whether a run saves :data:`SEGMENTS` and waits for the dispatcher (``--collect-only``)."""
SERVER_ENV = {
    "SURMESURE_WRITE_KEYS": orjson.dumps({WRITE_KEY: "web"}).decode(),
    "SURMESURE_SECRET_KEY": "bench-secret",
    "SURMESURE_SUPPRESSION_KEY": "bench-suppression-key",
    "SURMESURE_ENCRYPTION_KEY": "bench-encryption-key",
}
SAVE_SEGMENTS = """
import sys
from datetime import datetime

import orjson

import surmesure
from surmesure.segment import repository
from surmesure.segment.definitions import parse
from surmesure.store import open_store

store = open_store(sys.argv[1])
try:
    for definition in orjson.loads(sys.argv[2]):
        repository.save(store, parse(definition), datetime(2026, 1, 1))
finally:
    store.dispose()
print(orjson.dumps({"package": surmesure.__file__}).decode())
"""
PREFILL = """
import sys

sys.path.append(sys.argv[3])  # make_bodies, from the benchmarks

import orjson
import sqlalchemy as sa

import surmesure
from bench_collect import make_bodies
from surmesure.collect.events import write_events
from surmesure.collect.importer import utcnow
from surmesure.collect.segment import validate_messages
from surmesure.store import open_store

store = open_store(sys.argv[1])
try:
    wanted = int(sys.argv[2])
    for part in range(0, wanted, 200_000):  # 5,000 devices a part, as in a run
        bodies = make_bodies(min(200_000, wanted - part), f"past{part}")
        for start in range(0, len(bodies), 200):
            chunk = bodies[start : start + 200]
            accepted, _ = validate_messages([m for b in chunk for m in orjson.loads(b)["batch"]])
            with store.begin() as conn:
                write_events(store, conn, accepted, source="web", received_at=utcnow())
            store.settle_bulk()
    with store.begin() as conn:  # history, not news: no subscriber is handed it
        conn.execute(sa.text("DELETE FROM changes"))
finally:
    store.dispose()
print(orjson.dumps({"package": surmesure.__file__}).decode())
"""
"""Store ``argv[2]`` events of other devices than the run's (5,000 devices each 200,000), with
the code under test, before its server starts (``--prefill``): the tables a collector meets
after months of traffic. Their changes are deleted: the run's rounds are handed its own."""
PREFILL_EVENTS = {"count": 0}


def make_bodies(events: int, seed: str) -> list[bytes]:
    """Pre-encoded ``/v1/batch`` bodies: page, track and identify calls of 5,000 devices."""
    bodies = []
    for call in range(events // PER_CALL):
        batch = []
        for i in range(PER_CALL):
            n = call * PER_CALL + i
            device = f"{seed}-dev-{n % 5_000}"
            message: dict[str, Any] = {
                "messageId": f"{seed}-{n}",
                "anonymousId": device,
                "timestamp": f"2026-03-{1 + n % 28:02d}T{n % 24:02d}:00:00.000Z",
                "context": {"library": {"name": "analytics.js", "version": "5.2.0"}},
            }
            if n % 50 == 0:
                message |= {"type": "identify", "userId": f"{seed}-C{n % 5_000}",
                            "traits": {"email": f"c{n % 5_000}@{seed}.example.com"}}  # fmt: skip
            elif n % 3 == 0:
                message |= {"type": "track", "event": "Product Viewed",
                            "properties": {"product_id": f"P{n % 997}", "price": 19.9}}  # fmt: skip
            else:
                message |= {"type": "page", "name": "page", "properties": {"path": PAGES[n % 6]}}
            batch.append(message)
        bodies.append(orjson.dumps({"batch": batch}))
    return bodies


def serve(url: str, port: int, src: Path = HEAD_SRC, workers: int = 1) -> subprocess.Popen[bytes]:
    """``surmesure serve`` on ``port`` (``workers`` processes) with the code of ``src``, once it
    answers."""
    env = {**env_for(src), **SERVER_ENV, "SURMESURE_DATABASE_URL": url}
    exe = Path(sys.executable).with_name("surmesure")
    command = [str(exe), "serve", "--port", str(port), "--log-level", "warning"]
    command += ["--workers", str(workers)] if workers > 1 else []
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # a busy machine starts a server slowly
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def save_segments(url: str, src: Path) -> None:
    """Save :data:`SEGMENTS` in the store of ``url`` with the code of ``src`` (which creates
    its schema, as that code's server would)."""
    os.environ.update(SERVER_ENV)  # the child runs with the server's keys
    run_child(src, SAVE_SEGMENTS, url, orjson.dumps(SEGMENTS).decode())


def prefill(url: str, src: Path, events: int) -> None:
    """Store ``events`` events of other devices with the code of ``src`` (:data:`PREFILL`)."""
    os.environ.update(SERVER_ENV)
    run_child(src, PREFILL, url, str(events), str(Path(__file__).resolve().parent))


def dispatch_status(url: str) -> dict[str, Any]:
    """``surmesure dispatch status --json`` of the store the server at ``url`` serves: over the
    server's local channel for a DuckDB file (the server owns it), else read here."""
    from surmesure.store.owner import current

    owner = current(url)
    if owner is None:
        from surmesure.dispatch import dispatcher, outbox, subscribers
        from surmesure.store import open_store

        store = open_store(url, migrate=False)
        try:
            positions = dispatcher.cursors(store, subscribers.names())
            with store.connect() as conn:
                last = outbox.last_id(conn)
        finally:
            store.dispose()
        return {
            "last_change": last,
            "subscribers": {n: {"behind": int(last > p)} for n, p in positions.items()},
        }
    from surmesure.api.local import HEADER

    answer = httpx.post(
        f"{owner.url}/v1/local/run",
        json={"argv": ["dispatch", "status", "--json"], "cwd": os.getcwd()},
        headers={HEADER: owner.token},
        timeout=30,
    ).json()
    if answer.get("exit_code") != 0:
        raise RuntimeError(f"dispatch status: {answer}")
    status: dict[str, Any] = orjson.loads(answer["stdout"])
    return status


def wait_dispatched(url: str, timeout: float = 300.0) -> int:
    """Wait until every subscriber of the server's dispatcher has had every change (the last
    membership is visible); returns how many times the status was asked."""
    deadline = time.monotonic() + timeout
    asked = 0
    while True:
        asked += 1
        status = dispatch_status(url)
        if all(s["behind"] == 0 for s in status["subscribers"].values()):
            return asked
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dispatcher did not catch up: {status}")
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, every thread) the process ``pid`` has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def send(port: int, bodies: list[bytes], clients: int, progress: Progress) -> float:
    """Send every body over ``clients`` kept-alive connections, each waiting for its answer
    before the next call. The requests are written as prepared bytes and the answers read
    with asyncio streams: a lean load generator, so that the figure measures the server."""
    task = progress.add_task("events sent", total=len(bodies) * PER_CALL)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(request_bytes(port, "POST", "/v1/batch", body, WRITE_KEY))

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                ok, status, answer = await exchange(reader, writer, queue.get_nowait())
                if not ok:
                    raise RuntimeError(f"{status.decode().strip()}: {answer[:300]!r}")
                progress.advance(task, PER_CALL)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start


def over_http(
    url: str, events: int, clients: int, progress: Progress, src: Path = HEAD_SRC
) -> dict[str, Any]:
    import socket

    port = PORT["port"]
    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
    bodies = make_bodies(events, uuid.uuid4().hex[:8])
    end_to_end = END_TO_END["on"]
    if end_to_end:
        save_segments(url, src)
    if PREFILL_EVENTS["count"]:
        prefill(url, src, PREFILL_EVENTS["count"])
    server = serve(url, port, src)
    lag, asked = 0.0, 0
    try:
        if end_to_end:
            # the first status imports the local channel's client here (a second of this
            # process's time, which the lag would count as the dispatcher's)
            dispatch_status(url)
        cpu = cpu_seconds(server.pid)
        seconds = asyncio.run(send(port, bodies, clients, progress))
        if end_to_end:
            answered = time.perf_counter()
            asked = wait_dispatched(url)
            lag = time.perf_counter() - answered
            seconds += lag
        cpu = cpu_seconds(server.pid) - cpu
        memory = peak_mb(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    stored = count_rows(url, "events") - PREFILL_EVENTS["count"]
    members = count_rows(url, "segment_members")
    if end_to_end and members == 0:
        raise RuntimeError("no segment membership was recorded")
    return {
        "events": events,
        "stored": stored,
        "members": members,
        "seconds": seconds,
        "lag": lag,
        "status_asked": asked,
        "peak_mb": memory,
        "cpu_us": cpu / events * 1e6,
    }


def count_rows(url: str, table: str) -> int:
    from surmesure.store import open_store

    store = open_store(url, migrate=False)  # a baseline's database keeps its own schema
    try:
        with store.connect() as conn:
            import sqlalchemy as sa

            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        store.dispose()


def direct(url: str, events: int, progress: Progress) -> dict[str, Any]:
    """The baseline: ``write_events`` in this process, one transaction per 100 events."""
    from surmesure.collect.events import write_events
    from surmesure.collect.importer import utcnow
    from surmesure.collect.segment import validate_messages
    from surmesure.store import open_store

    bodies = [orjson.loads(b)["batch"] for b in make_bodies(events, uuid.uuid4().hex[:8])]
    task = progress.add_task("events written directly", total=events)
    store = open_store(url)
    try:
        start = time.perf_counter()
        for batch in bodies:
            accepted, _ = validate_messages(batch)
            with store.begin() as conn:
                write_events(store, conn, accepted, source="web", received_at=utcnow())
            progress.advance(task, len(batch))
        seconds = time.perf_counter() - start
    finally:
        store.dispose()
    return {"events": events, "seconds": seconds}


def postgres_database(admin_url: str) -> tuple[str, Any]:
    import sqlalchemy as sa

    name = f"surmesure_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the server of ``admin_url``, dropped afterwards."""
    url, drop = postgres_database(admin_url)
    try:
        yield url
    finally:
        drop()


def on_both_stores(run: Callable[[str], dict[str, Any]], postgres: str) -> dict[str, Any]:
    """``run(url)`` on a fresh DuckDB file, then on a fresh PostgreSQL database (created on
    the server of the admin URL ``postgres``, dropped afterwards; ``none`` skips it)."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["duckdb"] = run(f"duckdb:///{folder}/bench.duckdb")
    if postgres != "none":
        url, drop = postgres_database(postgres)
        try:
            results["postgresql"] = run(url)
        finally:
            drop()
    return results


def print_results(results: dict[str, dict[str, Any]], title: str, as_json: bool) -> None:
    """One row per store (JSON with ``as_json``)."""
    if as_json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=title)
    for column in ("store", *next(iter(results.values()))):
        table.add_column(column)
    for store, row in results.items():
        table.add_row(store, *(str(v) for v in row.values()))
    Console().print(table)


def fresh_database(kind: str, folder: Path, admin_url: str) -> tuple[str, Any]:
    """A new, empty database: ``(url, drop)``, ``drop`` ``None`` for a DuckDB file."""
    if kind == "duckdb":
        return f"duckdb:///{folder / f'bench-{uuid.uuid4().hex[:8]}.duckdb'}", None
    return postgres_database(admin_url)


def against_baseline(
    args: argparse.Namespace, stores: list[str], folder: Path, progress: Progress
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per store, per side (this checkout, the baseline): one run a round on a fresh database,
    the sides alternating their order round by round."""
    import bench_validate  # it reads this module's bodies

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with checkout(args.baseline) as baseline_src:
        sides = {"head": HEAD_SRC, "baseline": baseline_src}
        for store in stores:
            runs[store] = {side: [] for side in sides}
            for turn in range(args.rounds):
                for side in list(sides) if turn % 2 == 0 else list(sides)[::-1]:
                    url, drop = fresh_database(store, folder, args.postgres)
                    try:
                        result = over_http(url, args.events, args.clients, progress, sides[side])
                    finally:
                        if drop is not None:
                            drop()
                    if result["stored"] != result["events"]:
                        raise RuntimeError(f"{side}: {result['stored']} of {result['events']}")
                    runs[store][side].append(result)
        validation = bench_validate.compare(sides, 20_000, 5, args.rounds)
    runs["validation"] = validation  # type: ignore[assignment]
    return runs


def baseline_tables(
    runs: dict[str, dict[str, list[dict[str, Any]]]], args: argparse.Namespace
) -> list[Table]:
    import bench_validate

    head, base = f"{describe('HEAD')}+", describe(args.baseline)
    table = Table(
        title=f"/v1/batch, {PER_CALL} events a call, {args.clients} clients, {_measured()}: "
        f"this checkout ({head}) against {base}, {args.rounds} alternating rounds"
    )
    for column in ("store", "code", "events/s (median)", "each round", "/ baseline",
                   "server CPU µs/event", "CPU / baseline", "lag s", "members",
                   "peak MB"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("store", "code") else "right")
    for store, sides in runs.items():
        if store == "validation":
            continue
        rates = {side: [r["events"] / r["seconds"] for r in found] for side, found in sides.items()}
        median = {side: statistics.median(found) for side, found in rates.items()}
        cpu = {side: statistics.median(r["cpu_us"] for r in found) for side, found in sides.items()}
        for side, name in (("head", head), ("baseline", base)):
            table.add_row(
                store,
                name,
                f"{median[side]:,.0f}",
                " ".join(f"{rate:,.0f}" for rate in rates[side]),
                f"{median[side] / median['baseline']:.2f}x",
                f"{cpu[side]:.1f}",
                f"{cpu[side] / cpu['baseline']:.3f}x",
                f"{statistics.median(r['lag'] for r in sides[side]):.2f}",
                f"{sides[side][-1]['members']:,}",
                f"{max(r['peak_mb'] for r in sides[side]):,.0f}",
            )
    validation = bench_validate.summary(runs["validation"])  # type: ignore[arg-type]
    named = {head if k == "head" else base: v for k, v in validation.items()}
    return [table, bench_validate.table(named, base)]


def _measured() -> str:
    if END_TO_END["on"]:
        return "durable, until every membership is updated"
    return "durable (collection only)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    parser.add_argument("--postgres", default=DEFAULT_PG, help="admin URL; 'none' to skip")
    parser.add_argument("--baseline", metavar="REF", help="a commit to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline")
    parser.add_argument("--port", type=int, default=0, help="the servers' port (default: free)")
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="no segment saved; the clock stops at the last answer, not the last delivery",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        metavar="N",
        help="store N events of other devices before each server starts (a store in use)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    PORT["port"] = args.port
    PREFILL_EVENTS["count"] = args.prefill
    END_TO_END["on"] = not args.collect_only
    console = Console(stderr=True)
    if args.baseline is not None:
        stores = ["duckdb"] + ([] if args.postgres == "none" else ["postgresql"])
        with tempfile.TemporaryDirectory() as folder, Progress(console=console) as progress:
            runs = against_baseline(args, stores, Path(folder), progress)
        if args.json:
            sys.stdout.write(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode() + "\n")
            return
        for table in baseline_tables(runs, args):
            Console().print(table)
        return
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder, Progress(console=console) as progress:
        stores = {"duckdb": (f"duckdb:///{Path(folder) / 'bench.duckdb'}", None)}
        if args.postgres != "none":
            stores["postgresql"] = postgres_database(args.postgres)
        try:
            for name, (url, _) in stores.items():
                http = over_http(url, args.events, args.clients, progress)
                base = direct(url, args.baseline_events, progress)
                results[name] = {"http": http, "direct": base}
        finally:
            for _, drop in stores.values():
                if drop is not None:
                    drop()
    if args.json:
        sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(
        title=f"/v1/batch, {PER_CALL} events a call, {args.clients} clients, {_measured()}"
    )
    for column in ("store", "events", "stored", "events/s", "lag s", "members",
                   "server CPU µs/event", "server peak MB", "direct events/s",
                   "HTTP / direct"):  # fmt: skip
        table.add_column(column, justify="left" if column == "store" else "right")
    for name, r in results.items():
        rate = r["http"]["events"] / r["http"]["seconds"]
        base = r["direct"]["events"] / r["direct"]["seconds"]
        table.add_row(
            name,
            f"{r['http']['events']:,}",
            f"{r['http']['stored']:,}",
            f"{rate:,.0f}",
            f"{r['http']['lag']:.2f}",
            f"{r['http']['members']:,}",
            f"{r['http']['cpu_us']:.1f}",
            f"{r['http']['peak_mb']:,.0f}",
            f"{base:,.0f}",
            f"{rate / base:.2f}x",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
