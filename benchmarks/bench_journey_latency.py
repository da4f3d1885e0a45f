"""From a collected event to the journey's send recorded in the outbox: latency percentiles at a
steady rate (``--rate``, default 1,000 events/s, for ``--seconds``, default 10).

``surmesure serve`` runs in its own process on a DuckDB store where a journey is published
(entry: ``Signed Up``; first step: an e-mail); with ``--postgres URL``, on a fresh PostgreSQL
database, with ``--workers`` server processes. A lean client sends one ``/v1/track`` call per
event, each from a new visitor, paced at the rate, on ``--connections`` kept-alive connections
(default 128; each waits for its answer before its next call, so they must be enough for the
rate: at most ``connections / answer time`` calls a second. A call is answered once the group
commit that holds it is durable, 40 to 70 ms, so 64 connections could offer only about 1,000
calls a second: a shop's 1,000 events a second come from far more browsers than that). It prints
the rate offered and the rate the server took (events answered 200 a second, from the first
offer to the last answer): when the server falls behind, the events wait for a free connection
and the taken rate is lower. The latency of an event is the time to its send recorded in the
outbox (``messages.planned_at``) from the server receiving it (``events.received_at``), and from
the client offering it (its time on the pacing schedule, so the time it waited for a connection
counts), all on the one machine's clock. The target is met when the server took the offered rate
and the p99 from the offer is under 1 s. The server's CPU time per event is printed beside
(every thread and worker process of it): when the rate is not taken with enough connections,
that is what limits it. ``--no-journey`` publishes no journey, for the cost of collecting alone.
``--known N`` first stores N people known by a device id, as a store in use holds (the events
still come from new visitors): what grows with the store shows.

``--baseline REF`` runs the same load against a server started from a temporary ``git
worktree`` of REF as well, the two alternating round by round (``--rounds``), each on a fresh
store built alike (migrated by its own code), and prints both with their ratio.

    python benchmarks/bench_journey_latency.py [--rate 1000] [--seconds 10] [--connections 128]
        [--postgres URL [--workers 2]] [--no-journey] [--known N] [--port P]
        [--baseline REF [--rounds 3]] [--json]

Target (issue 14): p99 under 1 s at 1,000 events/s.
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
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from rich.console import Console

from bench_collect import cpu_seconds, scratch_postgres, serve
from gitref import HEAD_SRC, checkout, describe, env_for
from loadgen import exchange, request_bytes
from surmesure.clock import utcnow
from surmesure.journeys import published
from surmesure.journeys.document import parse
from surmesure.store import open_store, schema

WRITE_KEY = "bench-key"
TARGET_P99 = 1.0
PORT = {"port": 18461}
"""The server's port (``--port``)."""
JOURNEY = {
    "name": "lat",
    "entry": {"event": {"name": "Signed Up"}},
    "steps": [
        {"id": "hello", "send": {"channels": {"email": {"text": "Hello"}}}, "next": "pause"},
        {"id": "pause", "wait": {"days": 1}, "next": "done"},
        {"id": "done", "exit": {}},
    ],
}


def _body(i: int, run: str) -> bytes:
    return orjson.dumps(
        {
            "type": "track",
            "event": "Signed Up",
            "anonymousId": f"{run}-{i}",
            "messageId": f"{run}-m{i}",
        }
    )


class Load:
    """What the client offered and what the server took: each event's offered time (on the
    wall clock, as the server's), the answers, and when the last came."""

    def __init__(self, rate: float, seconds: float) -> None:
        self.rate = rate
        self.total = int(rate * seconds)
        self.run = uuid.uuid4().hex[:8]
        self.started = 0.0
        """Wall-clock time of the first offer."""
        self.finished = 0.0
        """Wall-clock time of the last answer."""
        self.taken = 0
        self.refused = 0
        self.backlog = 0
        """Most events offered and not yet sent (waiting for a free connection)."""

    def offered_at(self, i: int) -> float:
        return self.started + i / self.rate

    def taken_rate(self) -> float:
        """Events answered 200 per second, from the first offer to the last answer: below the
        offered rate when the server fell behind (the clients queued the rest)."""
        return self.taken / max(self.finished - self.started, 1e-9)


async def _send(port: int, load: Load, connections: int) -> None:
    """``load.total`` events offered at ``load.rate``, each sent once a connection is free."""
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            i = await queue.get()
            if i < 0:
                break
            request = request_bytes(port, "POST", "/v1/track", _body(i, load.run), WRITE_KEY)
            ok, _, _ = await exchange(reader, writer, request)
            if ok:
                load.taken += 1
            else:
                load.refused += 1
        writer.close()

    tasks = [asyncio.create_task(client()) for _ in range(connections)]
    start = time.perf_counter()
    load.started = time.time()
    for i in range(load.total):
        delay = start + i / load.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(i)
        load.backlog = max(load.backlog, queue.qsize())
    for _ in tasks:
        queue.put_nowait(-1)
    await asyncio.gather(*tasks)
    load.finished = time.time()


@contextmanager
def _database(postgres: str | None) -> Iterator[str]:
    """A fresh store's URL: a DuckDB file, or a PostgreSQL database, dropped afterwards."""
    if postgres is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"duckdb:///{Path(folder) / 'latency.duckdb'}"
        return
    with scratch_postgres(postgres) as url:
        yield url


def _know(store: Any, count: int) -> None:
    """``count`` people, each known by a device id (a random blind index), in ids far above
    the ones the store gives (so the server's new people never meet them)."""
    if count <= 0:
        return
    import pyarrow as pa

    ids = pa.array(np.arange(10**12, 10**12 + count, dtype=np.int64))
    at = pa.array([utcnow()] * count, pa.timestamp("us"))
    values = pa.array([uuid.uuid4().hex + uuid.uuid4().hex for _ in range(count)])
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            schema.people,
            pa.table({"person_id": ids, "merged_into": pa.nulls(count, pa.int64()),
                      "created_at": at, "updated_at": at}),
        )  # fmt: skip
        store.bulk_insert(
            conn,
            schema.identifiers,
            pa.table({"kind": pa.array(["anonymous_id"] * count), "value": values,
                      "person_id": ids, "node_id": ids, "source": pa.array(["web"] * count),
                      "first_seen_at": at}),
        )  # fmt: skip


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and of its children (the server's worker processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(k) for k in children.read_text().split()] if children.exists() else []
    total = 0.0
    for p in [pid, *kids]:
        with suppress(FileNotFoundError):
            total += cpu_seconds(p)
    return total


def run(
    rate: float,
    seconds: float,
    connections: int,
    console: Console,
    journey: bool = True,
    postgres: str | None = None,
    workers: int = 1,
    known: int = 0,
    src: Path = HEAD_SRC,
) -> dict[str, Any]:
    with _database(postgres) as url:
        # the schema of the code that serves it (a baseline's may be older than this one's)
        migrate = "from surmesure.store import open_store; open_store(__import__('sys').argv[1])"
        subprocess.run([sys.executable, "-c", migrate, url], env=env_for(src), check=True)
        store = open_store(url, migrate=False)
        _know(store, known)
        if journey:
            published.publish(store, parse(JOURNEY), utcnow())
        store.dispose()
        port = PORT["port"]
        # one event a request: the write key's default limit (1,000 requests/s) would refuse
        # the bursts of a paced 1,000/s, and this measures latency, not the limit
        limits = {"collect": f"{int(rate * 4)}/second", "decide": "3000/second"}
        os.environ.setdefault("SURMESURE_RATE_LIMITS", orjson.dumps(limits).decode())
        server = serve(url, port, src, workers=workers)
        load = Load(rate, seconds)
        try:
            cpu = _tree_cpu(server.pid)
            asyncio.run(_send(port, load, connections))
            cpu = _tree_cpu(server.pid) - cpu
            time.sleep(2.0)  # the last events reach the outbox
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        store = open_store(url)
        e, m = schema.events, schema.messages
        with store.connect() as conn:
            rows = conn.execute(
                sa.select(e.c.message_id, e.c.received_at, m.c.planned_at).select_from(
                    e.join(m, m.c.person_id == e.c.person_id)
                )
            ).all()
        store.dispose()
    # from the server receiving the event, and from the client offering it (the time it
    # waited for a free connection counted: a server that falls behind cannot hide it)
    waits = np.asarray([(p - r).total_seconds() for _, r, p in rows])
    epoch = datetime(1970, 1, 1)
    offered = np.asarray(
        [(p - epoch).total_seconds() - load.offered_at(int(i.rsplit("-m", 1)[1]))
         for i, _, p in rows]
    )  # fmt: skip
    return {
        "rate": rate,
        "offered_rate": round(load.rate),
        "taken_rate": round(load.taken_rate()),
        "kept_up": load.taken_rate() >= 0.99 * load.rate and not load.refused,
        "most_queued": load.backlog,
        "store": "postgresql" if postgres else "duckdb",
        "workers": workers,
        "connections": connections,
        "known": known,
        "server_cpu_ms_per_event": round(1000 * cpu / max(load.taken, 1), 3),
        "sent": load.taken,
        "refused": load.refused,
        "recorded": int(waits.size),
        "p50_seconds": _percentile(waits, 50),
        "p99_seconds": _percentile(waits, 99),
        "max_seconds": round(float(waits.max()), 3) if waits.size else None,
        "p99_from_offer_seconds": _percentile(offered, 99),
    }


def _percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values.size else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument(
        "--no-journey",
        action="store_true",
        help="Publish no journey: the server's cost of collecting alone, to compare.",
    )
    parser.add_argument("--postgres", default=None, help="A PostgreSQL server URL (admin).")
    parser.add_argument("--workers", type=int, default=1, help="Server processes (PostgreSQL).")
    parser.add_argument("--known", type=int, default=0, help="People stored beforehand.")
    parser.add_argument("--port", type=int, default=PORT["port"])
    parser.add_argument("--baseline", metavar="REF", help="A commit to compare with.")
    parser.add_argument("--rounds", type=int, default=3, help="With --baseline.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    PORT["port"] = args.port
    console = Console(stderr=args.json)
    if args.baseline is not None:
        _against_baseline(args, console)
        return
    result = run(
        args.rate,
        args.seconds,
        args.connections,
        console,
        not args.no_journey,
        args.postgres,
        args.workers if args.postgres else 1,
        args.known,
    )
    if args.json:
        print(orjson.dumps(result).decode())
        return
    console.print(_verdict(result))


def _verdict(result: dict[str, Any]) -> str:
    """The run in words: offered and taken rates first, then the latencies and the CPU."""
    p99, late = result["p99_seconds"], result["p99_from_offer_seconds"]
    mark = "ok" if result["kept_up"] and late is not None and late < TARGET_P99 else "MISSED"
    shortfall = "" if result["kept_up"] else " [bold red](the server fell behind)[/]"
    return (
        f"{result['store']}, {result['workers']} server process(es), "
        f"{result['connections']} connections: offered {result['offered_rate']:,} events/s, "
        f"[bold]taken {result['taken_rate']:,}/s[/]{shortfall} "
        f"({result['sent']:,} stored, {result['refused']} refused, at most "
        f"{result['most_queued']:,} waiting for a connection), {result['recorded']:,} sends "
        f"recorded: from receipt p50 {result['p50_seconds']} s, p99 {p99} s, max "
        f"{result['max_seconds']} s; [bold]from offer p99 {late} s[/] (target < {TARGET_P99} s "
        f"at the offered rate: {mark}); server CPU {result['server_cpu_ms_per_event']} ms/event"
    )


def _against_baseline(args: argparse.Namespace, console: Console) -> None:
    """Both sides, alternating, ``args.rounds`` times; the medians and their ratio."""
    head, base = f"{describe('HEAD')}+", describe(args.baseline)
    runs: dict[str, list[dict[str, Any]]] = {"head": [], "baseline": []}
    workers = args.workers if args.postgres else 1
    with checkout(args.baseline) as baseline_src:
        for turn in range(args.rounds):
            order = [("head", HEAD_SRC), ("baseline", baseline_src)]
            for side, src in order if turn % 2 == 0 else order[::-1]:
                journey = not args.no_journey
                result = run(args.rate, args.seconds, args.connections, console, journey,
                             args.postgres, workers, args.known, src)  # fmt: skip
                runs[side].append(result)
                console.print(f"  round {turn + 1}, {side}: {_line(result)}", style="dim")
    if args.json:
        print(orjson.dumps(runs).decode())
        return
    console.print(f"this checkout ({head}) against {base}, {args.rounds} alternating rounds, "
                  f"{args.known:,} people known beforehand, medians:")  # fmt: skip
    keys = ("taken_rate", "server_cpu_ms_per_event", "p50_seconds", "p99_seconds",
            "p99_from_offer_seconds")  # fmt: skip
    console.print(f"  offered_rate: {args.rate:,.0f}")
    for key in keys:
        now = statistics.median(r[key] or 0 for r in runs["head"])
        then = statistics.median(r[key] or 0 for r in runs["baseline"])
        ratio = f"{now / then:.2f}x" if then else "-"
        console.print(f"  {key}: {now} / {then} ({ratio})")


def _line(result: dict[str, Any]) -> str:
    return (
        f"offered {result['offered_rate']:,}/s, taken {result['taken_rate']:,}/s, server CPU "
        f"{result['server_cpu_ms_per_event']} ms/event, p50 {result['p50_seconds']} s, p99 "
        f"{result['p99_seconds']} s, p99 from offer {result['p99_from_offer_seconds']} s"
    )


if __name__ == "__main__":
    main()
