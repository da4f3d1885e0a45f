"""Where the server's time goes on ``/v1/batch``: the app runs in this process as ``surmesure
serve`` starts it (its lifespan included: the event writer, the dispatcher, the scheduled jobs,
and the decision server's cache, which the dispatcher tells whom each round changed), fed the
bodies of ``bench_collect`` through an in-process ASGI transport, with every thread under
``cProfile`` (the writer's commits and the dispatcher's rounds run in threads of their own).
It prints the functions of the project by their own time and by their cumulative time, and the
SQL statements, commits and rollbacks the run made, per 1,000 events. ``--threads`` runs without
the profiler instead and prints the CPU time of each thread of the process (the event loop,
the event writer, the dispatcher, the journey worker...) in µs per event: which part of the
server spends it, at full speed.

To compare with a commit, run it a second time with that commit's ``src`` first on
``PYTHONPATH`` (``git worktree add /tmp/base REF``) and ``--save`` each profile, then compare
the two files with ``pstats``. Times under the profiler are inflated, and a thread's wait for
the interpreter lock is counted against the function it runs: read the counts and the
cumulative times, and confirm a change with ``bench_collect --baseline``.

``--track`` sends one ``/v1/track`` event a call instead (each a new visitor entering the
latency benchmark's journey, :mod:`bench_journey_latency`); ``--raw`` calls the ASGI app
directly, so the event loop's thread holds the server's work alone; ``--cpu`` profiles each
thread's CPU time rather than the wall clock (on a loaded machine, the waits left out).
``--segments`` saves the segments of ``bench_collect`` first and waits, after the last call,
until the dispatcher has delivered every change: the work from collection to real-time segment
membership.

    python benchmarks/profile_collect.py [--events 20000] [--clients 16] [--save FILE]
        [--threads] [--track] [--raw] [--cpu] [--segments]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench_collect import PER_CALL, SEGMENTS, WRITE_KEY, make_bodies


def track_body(i: int, seed: str) -> bytes:
    """One ``/v1/track`` body: a new visitor signs up."""
    import orjson

    body = {"event": "Signed Up", "anonymousId": f"{seed}-{i}", "messageId": f"{seed}-m{i}"}
    return orjson.dumps(body)


KEYS = {
    "SURMESURE_WRITE_KEYS": f'{{"{WRITE_KEY}": "web"}}',
    "SURMESURE_SECRET_KEY": "bench-secret",
    "SURMESURE_SUPPRESSION_KEY": "bench-suppression-key",
    "SURMESURE_ENCRYPTION_KEY": "bench-encryption-key",
}
SQL = (
    ("statements", "duckdb_engine/__init__.py", "execute"),
    ("bulk or raw statements", "backends/duckdb.py", "load_returning"),
    ("bulk or raw statements", "backends/duckdb.py", "run"),
    ("bulk or raw statements", "backends/duckdb.py", "fetch_literal"),
    ("bulk or raw statements", "backends/duckdb.py", "existing_keys"),
    ("commits", "sqlalchemy/engine/default.py", "do_commit"),
    ("rollbacks", "sqlalchemy/engine/default.py", "do_rollback"),
)


RAW = {"on": False}
"""Whether the calls go straight to the ASGI app (``--raw``): no HTTP client in the thread."""
CPU = {"on": False}
"""Whether the profiles count each thread's CPU time rather than the wall clock (``--cpu``)."""
WITH_SEGMENTS = {"on": False}
"""Whether segments are saved and the dispatcher waited for (``--segments``)."""


class Threads:
    """One profile per thread: this one, and each thread started while it records."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []

    def _start(self, frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time) if CPU["on"] else cProfile.Profile()
        self.profiles.append(profile)
        profile.enable()

    def __enter__(self) -> Threads:
        threading.setprofile(self._start)
        self._start(None, "", None)
        return self

    def __exit__(self, *exc: object) -> None:
        threading.setprofile(None)
        self.profiles[0].disable()

    def clear(self) -> None:
        """Forget what was recorded so far (the start-up, the warm-up), in every thread."""
        for profile in self.profiles:
            profile.clear()

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            try:
                stats.add(profile)  # a thread still running is read as it stands
            except TypeError:  # a thread that ran nothing since the warm-up: pstats refuses it
                continue
        return stats


async def post_asgi(app: Any, route: str, body: bytes, auth: str) -> int:
    """One call straight to the ASGI app, no HTTP client: its status."""
    headers = [(b"host", b"bench"), (b"authorization", auth.encode()),
               (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": route, "raw_path": route.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = [0]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays until the answer is sent
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


async def feed(app: Any, bodies: list[bytes], clients: int, route: str = "/v1/batch") -> float:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    queue = list(reversed(bodies))
    if RAW["on"]:

        async def raw() -> None:
            while queue:
                status = await post_asgi(app, route, queue.pop(), auth)
                if status != 200:
                    raise RuntimeError(f"answered {status}")

        start = time.perf_counter()
        await asyncio.gather(*(raw() for _ in range(clients)))
        return time.perf_counter() - start
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def one() -> None:
            while queue:
                answer = await client.post(route, content=queue.pop(), headers=headers)
                if answer.status_code != 200:
                    raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        return time.perf_counter() - start


def _app(url: str, events: int, track: bool) -> tuple[Any, list[bytes], str]:
    os.environ.update({"SURMESURE_DATABASE_URL": url, **KEYS})
    from surmesure.api.app import create_app
    from surmesure.config import Settings

    seed = uuid.uuid4().hex[:8]
    if WITH_SEGMENTS["on"]:
        _save_segments(url)
    if not track:
        return (
            create_app(Settings(), freeze=True),
            make_bodies(events + 10 * PER_CALL, seed),
            "/v1/batch",
        )
    os.environ["SURMESURE_RATE_LIMITS"] = '{"collect": "1000000/second"}'
    _publish(url)
    return (
        create_app(Settings(), freeze=True),
        [track_body(i, seed) for i in range(events + 10)],
        "/v1/track",
    )


def _save_segments(url: str) -> None:
    from datetime import datetime

    from surmesure.segment import repository
    from surmesure.segment.definitions import parse
    from surmesure.store import open_store

    store = open_store(url)
    for definition in SEGMENTS:
        repository.save(store, parse(definition), datetime(2026, 1, 1))
    store.dispose()


async def delivered(app: Any) -> None:
    """Wait until the dispatcher has delivered every change to every subscriber (at once
    without ``--segments``)."""
    from surmesure.dispatch import dispatcher, outbox, subscribers

    store = app.state.store
    while WITH_SEGMENTS["on"]:
        with store.connect() as conn:
            last = outbox.last_id(conn)
        if min(dispatcher.cursors(store, subscribers.names()).values()) >= last:
            return
        await asyncio.sleep(0.02)


def _publish(url: str) -> None:
    """The latency benchmark's journey (entry: ``Signed Up``, first step an e-mail)."""
    from bench_journey_latency import JOURNEY
    from surmesure.clock import utcnow
    from surmesure.journeys import published
    from surmesure.journeys.document import parse
    from surmesure.store import open_store

    store = open_store(url)
    published.publish(store, parse(JOURNEY), utcnow())
    store.dispose()


async def profiled(url: str, events: int, clients: int, track: bool) -> tuple[Threads, float]:
    app, bodies, route = _app(url, events, track)
    with Threads() as threads:
        async with app.router.lifespan_context(app):
            await feed(app, bodies[:10], clients, route)  # warm: first calls, first keys
            await delivered(app)
            threads.clear()
            seconds = await feed(app, bodies[10:], clients, route)
            await delivered(app)
    return threads, seconds


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user and system) of each live thread of this process, by thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for task in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{task}/stat").read_text()
        except FileNotFoundError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        name = names.get(int(task), "other (driver, executor)")
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


async def by_thread(
    url: str, events: int, clients: int, track: bool
) -> tuple[dict[str, float], float]:
    """CPU µs per event of each thread over the run (no profiler), and the run's seconds."""
    app, bodies, route = _app(url, events, track)
    async with app.router.lifespan_context(app):
        await feed(app, bodies[:10], clients, route)
        await delivered(app)
        before = thread_cpu()
        seconds = await feed(app, bodies[10:], clients, route)
        await delivered(app)
        after = thread_cpu()
    used = {n: (t - before.get(n, 0.0)) / events * 1e6 for n, t in after.items()}
    return {n: us for n, us in sorted(used.items(), key=lambda kv: -kv[1]) if us > 0}, seconds


def sql_counts(stats: pstats.Stats, events: int) -> str:
    counts: dict[str, int] = {}
    for (path, _, name), (_, calls, *_) in stats.stats.items():  # type: ignore[attr-defined]
        for label, where, function in SQL:
            if name == function and path.endswith(where):
                counts[label] = counts.get(label, 0) + calls
    return ", ".join(f"{label} {n / events * 1000:.1f}" for label, n in sorted(counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--save", metavar="FILE", help="write the merged profile there")
    parser.add_argument("--threads", action="store_true", help="CPU per thread, no profiler")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="Count each thread's CPU time, not the wall clock (a loaded machine's waits out).",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="Call the ASGI app directly, not through httpx: 'MainThread' is then the server's.",
    )
    parser.add_argument(
        "--track",
        action="store_true",
        help="One /v1/track event a call (a journey entered by each), not /v1/batch bodies.",
    )
    parser.add_argument(
        "--segments",
        action="store_true",
        help="Save segments and wait for the dispatcher: collection to segment membership.",
    )
    args = parser.parse_args()
    CPU["on"] = args.cpu
    WITH_SEGMENTS["on"] = args.segments
    RAW["on"] = args.raw
    if args.threads:
        with tempfile.TemporaryDirectory() as folder:
            url = f"duckdb:///{folder}/profile.duckdb"
            used, seconds = asyncio.run(by_thread(url, args.events, args.clients, args.track))
        print(f"{args.events:,} events in {seconds:.2f} s ({args.events / seconds:,.0f} events/s)")
        if not args.raw:
            print("client and server share the event loop: 'MainThread' holds both")
        for name, us in used.items():
            print(f"{us:8.1f} µs/event  {name}")
        print(f"{sum(used.values()):8.1f} µs/event  in all")
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"duckdb:///{folder}/profile.duckdb"
        threads, seconds = asyncio.run(profiled(url, args.events, args.clients, args.track))
    stats = threads.stats()
    if args.save:
        stats.dump_stats(args.save)
    count = len(threads.profiles)
    print(f"{args.events:,} events in {seconds:.2f} s under the profiler, {count} threads")
    print(f"per 1,000 events: {sql_counts(stats, args.events)}")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats("surmesure", args.top)
        print(out.getvalue().split("\n", 4)[-1])


if __name__ == "__main__":
    main()
