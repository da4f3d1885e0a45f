"""Two API workers on one PostgreSQL store, sharing Redis: decision latency, and how fast a
collected change reaches the worker it was not delivered to; with the people shared in Redis
(``SURMESURE_SERVING_CACHE_TTL_SECONDS`` > 0) and, as the baseline in the same run, with the
news of changes alone (TTL 0).

A demo world (``surmesure demo --customers N``) is built in a fresh PostgreSQL database (dropped
at the end). For each mode, two servers (bench_decide.py's) run on it, each keeping at most
``--cache-people`` people in memory (fewer than the customers, as a world of millions would be
for any worker's memory), both with ``SURMESURE_SERVING_CACHE_URL``. Measured:

(a) after a warm-up, a closed loop on both workers at once (decisions/s together), then an
    open loop of ``POST /v1/decide`` at ``--rate`` requests/s in all, half to each worker
    (bench_decide.py's requests: 70% known customers, 25% known visitors, 5% new), for
    ``--seconds``: p50, p99 and p99.9 per worker;
(b) for ``--changes`` customers greeted by name and decided for by both workers, a refusal of
    personalization collected by the first (``POST /v1/identify``, answered 200) until the
    second worker's next decision no longer greets them (polled every 5 ms);
(c) each server's resident memory at the end;
(d) in this process, a miss for one person by id: read from the store
    (:func:`~surmesure.unify.people_read.read_people`) against found in Redis
    (:func:`~surmesure.decide.shared_cache.read_through` once another read it), over
    ``--misses`` people: p50 and p99 of each, and their ratio.

    python benchmarks/bench_workers.py [--postgres URL] [--customers 5000]
        [--cache-people 1000] [--rate 300] [--seconds 10] [--changes 10]
        [--redis redis://127.0.0.1:6379/5] [--port 18400]
        [--misses 500] [--modes news_only shared_entries]
    python benchmarks/bench_workers.py --url STORE_URL [--misses 500]   # (d) alone

``--world DIR --world-db NAME`` keeps the world: the demo's files in ``DIR`` and the store in
the PostgreSQL database ``NAME`` (created on the server of ``--postgres``), built on the first
run and measured as it is on the next ones, such as a world of 1,000,000 customers. Or copied
in minutes from a DuckDB world ``bench_decide.py --world`` built (``world_copy.py --duckdb
DIR/world.duckdb --postgres .../NAME --world-dir DIR-pg``, then ``--world DIR-pg --world-db
NAME``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import sqlalchemy as sa

import bench_decide
import bench_serving
from bench_collect import scratch_postgres
from surmesure.dispatch import shared_entries

HERE = Path(__file__).resolve().parent
MODES = {"news_only": 0, "shared_entries": 900}


def clear(redis_url: str, store_url: str) -> None:
    """The store's entries out of Redis: each mode starts with none."""
    client = redis.Redis.from_url(redis_url)
    for name in client.scan_iter(match=shared_entries.prefix(store_url) + "*"):
        client.delete(name)
    client.close()


def greeted(client: httpx.Client, key: str, customers: list[str], count: int) -> list[Any]:
    """``count`` customers whose e-mail greets them by name, with the greeting."""
    chosen = []
    for customer in customers:
        said = bench_serving.email(client, key, customer)
        fields = (said["explanation"].get("content") or {}).get("fields") or []
        if any(f["field"] == "first_name" and f["used"] for f in fields):
            chosen.append((customer, str(said["content"]["body"]).split(",")[0]))
        if len(chosen) == count:
            break
    return chosen


def change_waits(ports: list[int], key: str, customers: list[str], count: int) -> dict[str, Any]:
    """(b): seconds from a change collected by the first worker to the second's decision."""
    first = httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=60)
    second = httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}", timeout=60)
    waits = []
    try:
        for customer, greeting in greeted(second, key, customers, count):
            bench_serving.email(first, key, customer)  # held by both
            sent = first.post(
                "/v1/identify",
                json={
                    "userId": customer,
                    "messageId": uuid.uuid4().hex,
                    "context": {"consent": {"categoryPreferences": {"personalization": False}}},
                },
                auth=(bench_decide.WRITE_KEY, ""),
            )
            sent.raise_for_status()
            stored = time.perf_counter()
            while True:
                body = (bench_serving.email(second, key, customer).get("content") or {}).get("body")
                if not str(body).startswith(greeting):
                    waits.append(time.perf_counter() - stored)
                    break
                if time.perf_counter() - stored > 30:
                    waits.append(float("inf"))
                    break
                time.sleep(0.005)
    finally:
        first.close()
        second.close()
    ordered = sorted(waits) or [float("nan")]
    return {
        "changes": len(waits),
        "median_ms": round(1e3 * ordered[len(ordered) // 2], 1),
        "max_ms": round(1e3 * ordered[-1], 1),
    }


async def both(ports: list[int], payloads: list[bytes], rate: float, seconds: float) -> Any:
    """An open loop to each worker at half the rate, at once, over a few connections: each
    busy enough that the server does not close it as idle (after 5 s), which a loop of 64
    connections at a few requests a second would see as errors."""
    connections = min(64, max(4, int(rate / 8)))
    return await asyncio.gather(
        *(
            bench_decide.open_loop(
                port, "/v1/decide", payloads[k::2], rate / 2, seconds, connections
            )
            for k, port in enumerate(ports)
        )
    )


async def closed(
    ports: list[int], payloads: list[bytes], clients: int, seconds: float, pids: list[int]
) -> Any:
    """A closed loop on each worker, at once: what they decide together at most, and each
    server's CPU time a decision (whatever else the machine runs meanwhile)."""
    return await asyncio.gather(
        *(
            bench_decide.closed_loop(port, payloads, clients, seconds, pid=pid)
            for port, pid in zip(ports, pids, strict=True)
        )
    )


def run_mode(
    url: str, ttl: int, args: argparse.Namespace, key: str, people: tuple[list[str], list[str]]
) -> dict[str, Any]:
    clear(args.redis, url)
    env = {
        **os.environ,
        "SURMESURE_DATABASE_URL": url,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), str(HERE)]),
        "SURMESURE_SERVING_CACHE_URL": args.redis,
        "SURMESURE_SERVING_CACHE_TTL_SECONDS": str(ttl),
        "SURMESURE_SERVING_CACHE_PEOPLE": str(args.cache_people),
    }
    ports = [args.port, args.port + 1]
    servers = [bench_decide.start_server(url, port, env) for port in ports]
    try:
        ready_s = []
        for port in ports:  # everyone read into memory (packed, for a world of millions)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                ready_s.append(round(bench_serving.ready(client), 1))
        customers, visitors = people
        count = int(args.rate * args.seconds)
        payloads = bench_decide.bodies(customers, visitors, max(count, 20_000), 0)
        bench_decide.DECIDE["key"] = key
        pids = [s.pid for s in servers]
        asyncio.run(closed(ports, payloads, 4, 3, pids))  # warm up: the caches, model and stock
        most = asyncio.run(closed(ports, payloads, 16, args.seconds, pids))
        report: dict[str, Any] = {
            "ttl_s": ttl,
            "ready_s": ready_s,
            "rss_ready_mb": [bench_serving.rss_mb(s.pid) for s in servers],
            "closed_loop_per_s": sum(m["throughput_per_s"] for m in most),
            "server_cpu_ms_per_decision": [m.get("server_cpu_ms_per_request") for m in most],
        }
        loops = asyncio.run(both(ports, payloads, args.rate, args.seconds))
        for name, loop in zip(("first", "second"), loops, strict=True):
            report[name] = {k: loop[k] for k in ("served_rate", "p50_ms", "p99_ms", "p999_ms")}
            report[name]["errors"] = loop["errors"] + loop["dropped"]
        report["change_to_other_worker"] = change_waits(ports, key, customers[::-1], args.changes)
        report["rss_mb"] = [bench_serving.rss_mb(s.pid) for s in servers]
        return report
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=60)
        clear(args.redis, url)


def misses(url: str, redis_url: str, count: int) -> dict[str, Any]:
    """(d): one person's read on a miss, from the store and from Redis."""
    from surmesure.decide import shared_cache
    from surmesure.decide.library import EXAMPLES, Library
    from surmesure.store import open_store
    from surmesure.unify.people_read import read_people

    clear(redis_url, url)
    store = open_store(url)
    metrics = frozenset(Library(EXAMPLES).metrics())
    p = sa.table("people", sa.column("person_id"), sa.column("merged_into"))
    with store.connect() as conn:
        ids = [
            int(r[0])
            for r in conn.execute(
                sa.select(p.c.person_id).where(p.c.merged_into.is_(None)).limit(count)
            )
        ]
    shared = shared_cache.connect(redis_url, store, 900)
    timings: dict[str, list[float]] = {"store": [], "redis": []}
    try:
        for pid in ids:
            started = time.perf_counter()
            with store.connect() as conn:
                read_people(conn, [pid], metrics=metrics, named=[pid])
            timings["store"].append(time.perf_counter() - started)
            shared_cache.read_through(shared, [pid], (), metrics)  # written back
        for pid in ids:
            started = time.perf_counter()
            shared_cache.read_through(shared, [pid], (), metrics)
            timings["redis"].append(time.perf_counter() - started)
        hits = shared.hits
    finally:
        shared.close()
        store.dispose()
        clear(redis_url, url)
    out: dict[str, Any] = {"people": len(ids), "redis_hits": hits}
    for name, values in timings.items():
        out[name] = {
            "p50_ms": round(1e3 * bench_decide.percentile(values, 0.5), 3),
            "p99_ms": round(1e3 * bench_decide.percentile(values, 0.99), 3),
        }
    out["ratio_store_over_redis_p50"] = round(out["store"]["p50_ms"] / out["redis"]["p50_ms"], 1)
    return out


@contextmanager
def world(args: argparse.Namespace) -> Iterator[tuple[Path, str]]:
    """The demo's folder and the store's URL: kept with ``--world``, else made for this run."""
    if args.world is None:
        with tempfile.TemporaryDirectory() as tmp, scratch_postgres(args.postgres) as url:
            yield Path(tmp), url
        return
    if not args.world_db or not args.world_db.isidentifier():
        raise SystemExit("--world needs --world-db NAME (letters, digits and _)")
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": args.world_db}
        ).first()
        if found is None:
            conn.execute(sa.text(f'CREATE DATABASE "{args.world_db}"'))
    admin.dispose()
    args.world.mkdir(parents=True, exist_ok=True)
    url = sa.engine.make_url(args.postgres).set(database=args.world_db)
    yield args.world, url.render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--cache-people", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--port", type=int, default=18_400)
    parser.add_argument("--misses", type=int, default=500)
    parser.add_argument("--url", help="an existing store: (d) alone, on it")
    parser.add_argument("--world", type=Path, help="keep the demo's files here (see above)")
    parser.add_argument("--world-db", help="with --world: the kept PostgreSQL database")
    parser.add_argument(
        "--modes", nargs="+", choices=list(MODES), default=list(MODES), help="the modes to run"
    )
    args = parser.parse_args()
    if args.url:
        report = misses(args.url, args.redis, args.misses)
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    report: dict[str, Any] = {"customers": args.customers, "cache_people": args.cache_people}
    with world(args) as (folder, url):
        started = time.perf_counter()
        people = bench_decide.build_store(folder, args.customers, url, reuse=True)
        report["build_s"] = round(time.perf_counter() - started, 1)
        keys_env = (folder / "demo" / "keys.env").read_text().split()
        key = dict(line.split("=", 1) for line in keys_env)["SURMESURE_DEMO_DECIDE_KEY"]
        for mode in args.modes:
            report[mode] = run_mode(url, MODES[mode], args, key, people)
        report["miss_one_person"] = misses(url, args.redis, args.misses)
    if len(args.modes) == len(MODES):
        news, shared = report["news_only"], report["shared_entries"]
        report["ratios_shared_over_news_only"] = {
            f"{w}_{k}": round(shared[w][k] / news[w][k], 2)
            for w in ("first", "second")
            for k in ("p50_ms", "p99_ms")
            if news[w][k]
        }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
