"""Personalized content and the decision API.

1. Rendering: the shipped 3-variant e-mail template (``welcome_email``) rendered for N profiles
   synthesized in memory (default 1,000,000): compiled once, each render choosing the variant
   (stored segment, in-memory rule, default), resolving the personal fields against their
   reliability threshold, formatting money with Babel in the sandbox and building the
   explanation. Target: at least 20,000 renders/s. Baseline in the same run: the same variant
   bodies rendered by a plain (not sandboxed) Jinja2 environment with ready-made values,
   which is the floor of what any template engine call costs here.

2. ``POST /v1/decide``: the server runs in its own process (one uvicorn worker) on a
   demo-like store (``surmesure demo --customers N``, DuckDB); a lean asyncio load
   generator (prepared requests on kept-alive connections) sends requests at a fixed rate
   (open loop, default 1,000 req/s) for known customers, anonymous visitors and unknown
   ids, and reports p50/p99 latency and the rate served; then a closed loop (C clients)
   measures the most it serves. Goal: p99 < 10 ms at 1,000 req/s. Baseline in the same run:
   ``GET /health`` at the same rate (HTTP and the event loop, no decision).

3. In process, on the same kind of store: one :func:`~surmesure.decide.service.decide` call
   (p50/p99 and the SQL statements it sends, counted by ``Store.statements``)
   and one :func:`~surmesure.decide.recommend.service.recommend` call (p50/p99), against one
   plain query of a person's identifiers as the floor; ``--profile`` prints where the time of
   the decisions goes (cProfile). ``--db FILE`` keeps the demo store between runs.

``--rates R ...`` adds open loops at those rates (p50/p99 at each, ``decide_at_rates``), on
the same server after the one at ``--rate``. ``--world DIR`` keeps the API part's world
(DuckDB) in ``DIR``: the first run builds it there (``DIR/demo``, the files and keys, and
``DIR/world.duckdb``, the store), later runs reuse it, so a 1,000,000-customer world is built
once (``--customers 1000000 --world /data/w1m``) and each run only measures. The API part
reports the server's resident memory after its warm-up and its peak over the run.

    python benchmarks/bench_decide.py [--people 1000000] [--customers 50000] [--rate 1000]
        [--rates 250 500] [--seconds 10] [--clients 32] [--products 4] [--postgres [URL]]
        [--skip-render] [--skip-api] [--skip-inprocess] [--calls 2000] [--profile]
        [--db FILE] [--json] [--baseline REF [--rounds 3]] [--port PORT] [--world DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from jinja2 import Environment

from loadgen import exchange, request_bytes
from surmesure.decide.content import Audience, Known, render
from surmesure.decide.library import EXAMPLES, Library
from surmesure.segment.evaluate import Snapshot

WRITE_KEY = "bench-key"  # collects only
CRM_KEY = "bench-crm-key"  # collects only, as the CRM (a trait it sends outranks older ones)
#: the secrets every process of the run shares (set in the environment first thing): the data
#: is sealed under the encryption key when the store is built, and the servers open it under
#: the same one
KEYS = {
    "SURMESURE_SECRET_KEY": "bench",
    "SURMESURE_SUPPRESSION_KEY": "bench-suppression-key",
    "SURMESURE_ENCRYPTION_KEY": "bench-encryption-key",
}
#: the key the decisions are asked with: the demo's key of the decide scope, read once the
#: demo world is built (``demo/keys.env``)
DECIDE: dict[str, str] = {"key": ""}
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 3, 10, 17, 30)
FIRST = ["Marie", "Jean", "Léa", "Hugo", "Chloé", "Louis", "Emma", "Lucas", "Inès", "Paul"]
CITIES = ["Paris", "Lyon", "Marseille", "Lille", "Nantes", "Rennes", "Nice", "Dijon"]
SOURCES = [("crm", 0.9), ("web", 0.6), ("partner", 0.5), ("inferred", 0.4)]
PRODUCTS = [
    {"name": "Chemise en lin", "price": 49.9},
    {"name": "Mug", "price": 9.5},
    {"name": "Sac cabas", "price": 35.0},
    {"name": "Foulard", "price": 19.99},
]


def synthesize(n: int, seed: int = 7) -> list[Audience]:
    """``n`` profiles: a first name from a source of random reliability (some missing), a city,
    a third of them loyal customers, a sixth opted out, an order frequency (the derived metric
    the ``newcomer`` rule reads)."""
    rng = random.Random(seed)
    people = []
    for i in range(n):
        traits: dict[str, Known] = {}
        if rng.random() < 0.85:
            source, reliability = rng.choice(SOURCES)
            traits["first_name"] = Known(rng.choice(FIRST), source, reliability)
        if rng.random() < 0.7:
            traits["city"] = Known(rng.choice(CITIES), "crm", 0.8)
        people.append(
            Audience(
                person_id=i + 1,
                traits=traits,
                segments=frozenset({"loyal_customers"}) if i % 3 == 0 else frozenset(),
                opted_out=i % 6 == 5,
                snapshot=Snapshot(person_id=i + 1, metrics={"frequency": rng.randint(0, 6)}),
            )
        )
    return people


def bench_render(n: int) -> dict[str, Any]:
    compiled = Library(EXAMPLES).named("welcome_email")
    people = synthesize(n)
    context = {"season": "spring", "part_of_day": "evening"}
    products = PRODUCTS[:2]
    variants: dict[str, int] = {}
    start = time.perf_counter()
    for audience in people:
        out = render(compiled, audience, now=NOW, context=context, products=products)
        variants[out.variant] = variants.get(out.variant, 0) + 1
    seconds = time.perf_counter() - start

    plain = Environment(trim_blocks=True, lstrip_blocks=True)
    plain.filters["money"] = lambda v, c="EUR": f"{v:,.2f} €"
    bodies = [plain.from_string(v.body) for v in compiled.definition.variants]
    values = {"person": {"first_name": "Marie", "city": "Lyon"}, "context": context,
              "products": products, "currency": "EUR"}  # fmt: skip
    base_n = min(n, 200_000)
    start = time.perf_counter()
    for i in range(base_n):
        bodies[i % 3].render(values)
    base_seconds = time.perf_counter() - start
    rate, base_rate = n / seconds, base_n / base_seconds
    return {
        "people": n,
        "seconds": round(seconds, 2),
        "renders_per_s": round(rate),
        "variants": variants,
        "plain_jinja_renders_per_s": round(base_rate),
        "ratio_to_plain_jinja": round(rate / base_rate, 3),
        "target_renders_per_s": 20_000,
        "meets_target": rate >= 20_000,
    }


# -- the API -----------------------------------------------------------------------------------


def serve(url: str, port: int) -> None:
    """The server process: the API with the decision and page routes, on ``url``."""
    import uvicorn

    from surmesure.api.app import create_app
    from surmesure.config import Settings
    from surmesure.store import open_store

    store = open_store(url)
    settings = Settings(
        database_url=url,
        write_keys={WRITE_KEY: "web", CRM_KEY: "crm"},
        secret_key=KEYS["SURMESURE_SECRET_KEY"],
        suppression_key=KEYS["SURMESURE_SUPPRESSION_KEY"],
        encryption_key=KEYS["SURMESURE_ENCRYPTION_KEY"],
    )
    # as `surmesure serve` starts (a baseline commit's app may not take the argument)
    app = create_app(settings, store, **({"freeze": True} if _freezes() else {}))
    app.state.templates = Library(EXAMPLES)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _freezes() -> bool:
    """Whether this checkout's app can end its start-up as ``surmesure serve``'s does (a
    baseline commit may predate it)."""
    import inspect

    from surmesure.api.app import create_app

    return "freeze" in inspect.signature(create_app).parameters


def build_store(
    folder: Path, customers: int, url: str, *, reuse: bool = False
) -> tuple[list[str], list[str]]:
    """``surmesure demo`` into ``folder/demo`` and the store of ``url`` (skipped with ``reuse``
    when both are there already); the ids of up to 5,000 customers and visitors."""
    built = (folder / "demo" / "keys.env").is_file() and has_people(url)
    if not (reuse and built):
        env = {**os.environ, "SURMESURE_DATABASE_URL": url}
        command = [sys.executable, "-m", "surmesure.cli.main", "demo", "--customers",
                   str(customers), "--out", str(folder / "demo"), "--json"]  # fmt: skip
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)

    from surmesure.store import open_store

    store = open_store(url)
    rows = held_identifiers(store, 5_000)
    store.dispose()
    return (
        [v for k, v, _ in rows if k == "customer_id"][:5_000],
        [v for k, v, _ in rows if k == "anonymous_id"][:5_000],
    )


def has_people(url: str) -> bool:
    """Whether the store of ``url`` exists and holds people (a world built before)."""
    if url.startswith("duckdb"):
        return Path(url.split(":///", 1)[1]).is_file()
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM people LIMIT 1")).first() is not None
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def held_identifiers(store: Any, limit: int | None = None) -> list[tuple[str, str, int]]:
    """``(kind, value, person_id)`` of every customer and anonymous id (at most ``limit`` of
    each kind: a million-customer world's are many to open), values opened."""
    import sqlalchemy as sa

    from surmesure.store import schema

    ident = schema.identifiers
    sealed = "sealed" in ident.c  # not in a commit from before identifiers were sealed at rest
    columns = (
        [ident.c.kind, ident.c.node_id, ident.c.sealed, ident.c.person_id]
        if sealed
        else [ident.c.kind, ident.c.value, ident.c.person_id]
    )
    with store.connect() as conn:
        rows = [
            row
            for kind in ("customer_id", "anonymous_id")
            for row in conn.execute(
                sa.select(*columns).where(ident.c.kind == kind).order_by(ident.c.person_id)
                .limit(limit)
            ).all()
        ]  # fmt: skip
    if not sealed:
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]
    from surmesure.protect import blind

    with store.connect() as conn:
        values = blind.ring(store).open_many(conn, [r[1] for r in rows], [r[2] for r in rows])
    return [(str(r[0]), str(v), int(r[3])) for r, v in zip(rows, values, strict=True) if v]


def print_identifiers(url: str) -> None:
    """Print the customer and anonymous ids the decisions ask for (``--baseline``: each side
    reads them with its own code)."""
    from surmesure.store import open_store

    store = open_store(url)
    rows = held_identifiers(store, 5_000)
    store.dispose()
    customers = [v for k, v, _ in rows if k == "customer_id"][:5_000]
    visitors = [v for k, v, _ in rows if k == "anonymous_id"][:5_000]
    print(orjson.dumps({"customers": customers, "visitors": visitors}).decode())


def bodies(customers: list[str], visitors: list[str], count: int, products: int) -> list[bytes]:
    rng = random.Random(11)
    out = []
    placements = ["email_weekly", "home_banner", "home_banner", "personal_page"]
    for i in range(count):
        roll = rng.random()
        body: dict[str, Any] = {
            "placement": placements[i % 4],
            "context": {"device": "mobile"},
            "products": products,
        }
        if roll < 0.7 and customers:
            body["customer_id"] = rng.choice(customers)
        elif roll < 0.95 and visitors:
            body["anonymousId"] = rng.choice(visitors)
        else:
            body["anonymousId"] = f"never-seen-{i}"
        out.append(orjson.dumps(body))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def open_loop(
    port: int,
    path: str,
    payloads: list[bytes] | None,
    rate: float,
    seconds: float,
    connections: int = 64,
    *,
    key: str | None = None,
) -> dict[str, Any]:
    """Requests scheduled at a fixed rate, sent over at most ``connections`` kept-alive
    connections. A latency runs from the scheduled time (a request that had to wait for a
    free connection counts its wait), so a server that falls behind shows it. Requests not
    sent within three times the planned duration are counted as dropped. The requests are
    prepared bytes and the answers read with asyncio streams: a lean generator, so that the
    figure measures the server, not the client."""
    total = int(rate * seconds)
    method = "GET" if payloads is None else "POST"
    key = DECIDE["key"] if key is None else key
    prepared = (
        [request_bytes(port, method, path, None, key)]
        if payloads is None
        else [request_bytes(port, method, path, body, key) for body in payloads]
    )
    latencies: list[float] = []
    sent_at: list[float] = []
    errors = 0
    sent_count = 0
    start = time.perf_counter()
    give_up = start + 3 * seconds

    async def worker() -> None:
        nonlocal errors, sent_count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while sent_count < total:
                i = sent_count
                sent_count += 1
                scheduled = start + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif time.perf_counter() > give_up:
                    return
                try:
                    ok = (await exchange(reader, writer, prepared[i % len(prepared)]))[0]
                    errors += not ok
                except (OSError, asyncio.IncompleteReadError):
                    errors += 1
                    return
                latencies.append(time.perf_counter() - scheduled)
                sent_at.append(scheduled - start)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "dropped": total - len(latencies),
        "errors": errors,
        "offered_rate": rate,
        "served_rate": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1e3, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1e3, 2),
        "p999_ms": round(percentile(latencies, 0.999) * 1e3, 2),
        "slow_seconds": slow_seconds(sent_at, latencies),
    }


def slow_seconds(sent_at: list[float], latencies: list[float], top: int = 5) -> dict[str, Any]:
    """The seconds of the loop that held most of its slowest 1% of requests (second: how
    many): a tail spread evenly is the server's steady cost, one bunched in a few seconds is a
    pause (a collection, a background read)."""
    if not latencies:
        return {}
    bound = percentile(latencies, 0.99)
    counts: dict[int, int] = {}
    for at, latency in zip(sent_at, latencies, strict=True):
        if latency >= bound:
            counts[int(at)] = counts.get(int(at), 0) + 1
    busiest = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return {str(second): count for second, count in sorted(busiest)}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, *, busy: float = 0.1, limit: float = 180.0) -> float:
    """Wait until server ``pid`` spends under ``busy`` of a core over a second (what it builds
    in the background after its start, such as the recommendation model, is done), at most
    ``limit`` seconds; how long it waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < busy:
            break
    return time.monotonic() - started


async def closed_loop(
    port: int,
    payloads: list[bytes],
    clients: int,
    seconds: float,
    key: str | None = None,
    pid: int | None = None,
) -> dict[str, Any]:
    """``clients`` connections, each sending its next request when the last one is answered.
    With the server's ``pid``, also the server's CPU time per request: what the server spends,
    whatever else the machine runs meanwhile."""
    latencies: list[float] = []
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    stop = time.perf_counter() + seconds
    key = DECIDE["key"] if key is None else key
    prepared = [request_bytes(port, "POST", "/v1/decide", body, key) for body in payloads]

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        try:
            while time.perf_counter() < stop:
                sent = time.perf_counter()
                await exchange(reader, writer, prepared[i % len(prepared)])
                latencies.append(time.perf_counter() - sent)
                i += clients
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    elapsed = time.perf_counter() - start
    found = {
        "clients": clients,
        "requests": len(latencies),
        "throughput_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1e3, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1e3, 2),
    }
    if pid is not None:
        spent = cpu_seconds(pid) - cpu_before
        found["server_cpu_ms_per_request"] = round(spent * 1e3 / max(len(latencies), 1), 3)
    return found


def memory_mb(pid: int, field: str) -> float:
    """``field`` of ``/proc/<pid>/status`` (``VmRSS``: resident now; ``VmHWM``: peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def database(folder: Path, postgres: str | None, world: Path | None = None) -> Iterator[str]:
    """A DuckDB file in ``folder`` (``world/world.duckdb``, kept, with ``world``), or a fresh
    PostgreSQL database dropped afterwards."""
    if world is not None:
        if postgres is not None:
            raise SystemExit("--world keeps a DuckDB world; leave out --postgres")
        world.mkdir(parents=True, exist_ok=True)
        yield f"duckdb:///{world.resolve() / 'world.duckdb'}"
        return
    if postgres is None:
        yield f"duckdb:///{folder / 'decide.duckdb'}"
        return
    import sqlalchemy as sa

    name = f"bench_decide_{os.getpid()}"
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_server(url: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The API server (:func:`serve`) in a process of its own, once it answers ``/health``."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", url, "--port", str(port)], env=env
    )
    deadline = time.monotonic() + 300  # a large world, a busy machine
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("the API server did not start")
        time.sleep(0.2)


def bench_api(
    customers: int,
    rate: float,
    seconds: float,
    clients: int,
    postgres: str | None,
    products: int = 4,
    port: int | None = None,
    world: Path | None = None,
    rates: list[float] | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, database(Path(tmp), postgres, world) as url:
        folder = world or Path(tmp)
        reused = world is not None and (world / "demo" / "keys.env").is_file()
        reused = reused and (folder / "world.duckdb").is_file()
        started = time.perf_counter()
        known, visitors = build_store(folder, customers, url, reuse=world is not None)
        built = time.perf_counter() - started
        keys = dict(
            line.split("=", 1) for line in (folder / "demo" / "keys.env").read_text().split()
        )
        DECIDE["key"] = keys["SURMESURE_DEMO_DECIDE_KEY"]
        port = port or 18_000 + os.getpid() % 1000
        server = start_server(url, port, {**os.environ, "SURMESURE_DATABASE_URL": url})
        try:
            payloads = bodies(known, visitors, 20_000, products)
            asyncio.run(closed_loop(port, payloads, 4, 3))  # warm up: view, model, stock
            wait_idle(server.pid)
            warm_mb = memory_mb(server.pid, "VmRSS")
            health = asyncio.run(open_loop(port, "/health", None, rate, seconds))
            most = asyncio.run(closed_loop(port, payloads, clients, seconds, pid=server.pid))
            decide = asyncio.run(open_loop(port, "/v1/decide", payloads, rate, seconds))
            # lower rates: the latency a less loaded machine (or a faster one) would show
            lower = {
                str(round(r)): asyncio.run(open_loop(port, "/v1/decide", payloads, r, seconds))
                for r in sorted(set(rates or ())) if r != rate
            }  # fmt: skip
            # below saturation: the latency of a server that keeps up
            easy = min(rate, max(1.0, round(0.5 * most["throughput_per_s"])))
            relaxed = asyncio.run(open_loop(port, "/v1/decide", payloads, easy, seconds))
            peak_mb = memory_mb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "store": url.split(":", 1)[0],
        "demo_customers": customers,
        "products_per_decision": products,
        "store_build_s": round(built, 1),
        "store_reused": reused,
        "server_mb_after_warm_up": round(warm_mb),
        "server_peak_mb": round(peak_mb),
        "health_baseline": health,
        "decide": decide,
        "decide_p99_over_health_p99": round(decide["p99_ms"] / max(health["p99_ms"], 1e-9), 2),
        "closed_loop": most,
        "decide_at_half_capacity": relaxed,
        "decide_at_rates": lower,
        "goal": "p99 < 10 ms at 1,000 req/s",
        "meets_goal": decide["p99_ms"] < 10 and decide["served_rate"] >= 0.95 * rate,
    }


def _summary(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(seconds, 0.50) * 1e3, 3),
        "p99_ms": round(percentile(seconds, 0.99) * 1e3, 3),
    }


def _timed_decisions(
    store: Any, library: Library, requests: list[Any], profile: bool, serving: Any
) -> tuple[list[float], list[str], Any]:
    """Each request decided once (from ``serving`` when given): the seconds of each, the SQL
    statements sent, and the profile when asked for."""
    from surmesure.decide.service import decide

    timings: list[float] = []
    profiler = cProfile.Profile() if profile else None
    with store.statements() as sent:
        if profiler is not None:
            profiler.enable()
        for request in requests:
            compiled = library.for_placement(request.placement)
            started = time.perf_counter()
            decide(store, request, compiled, serving=serving)
            timings.append(time.perf_counter() - started)
        if profiler is not None:
            profiler.disable()
    return timings, sent, profiler


def bench_inprocess(url: str, calls: int, products: int, profile: bool) -> dict[str, Any]:
    """``decide()`` and ``recommend()`` called directly on the store at ``url``."""
    import sqlalchemy as sa

    from surmesure.decide.recommend.service import recommend
    from surmesure.decide.service import DecideRequest, decide
    from surmesure.store import open_store, schema

    store = open_store(url)
    library = Library(EXAMPLES)
    ident = schema.identifiers
    rows = held_identifiers(store)
    known = [r[1] for r in rows if r[0] == "customer_id"][:5_000]
    visitors = [r[1] for r in rows if r[0] == "anonymous_id"][:5_000]
    people = sorted({r[2] for r in rows if r[0] == "customer_id"})[:5_000]
    requests = []
    for body in bodies(known, visitors, calls, products):
        data = orjson.loads(body)
        requests.append(
            DecideRequest(
                placement=data["placement"],
                anonymous_id=data.get("anonymousId"),
                customer_id=data.get("customer_id"),
                context=data["context"],
                products=products,
            )
        )
    for request in requests[:50]:  # warm up: models, caches
        decide(store, request, library.for_placement(request.placement))
    timings, sent, profiler = _timed_decisions(store, library, requests, profile, None)
    from surmesure.decide.serving import Serving

    serving = Serving(store)
    started = time.perf_counter()
    serving.ensure_started(library.metrics())
    warm = getattr(serving, "warm_done", None)  # a baseline commit may read no one at start
    if warm is not None:
        warm.wait(120)  # as a server's first requests find it a few seconds after start-up
    built = time.perf_counter() - started
    served, served_sent, served_profiler = _timed_decisions(
        store, library, requests, profile, serving
    )
    serving.stop()
    reco: list[float] = []
    floor: list[float] = []
    rng = random.Random(5)
    with store.connect() as conn:
        for _ in range(min(calls, 2_000)):
            pid = rng.choice(people)
            started = time.perf_counter()
            recommend(store, pid, k=max(products, 1), conn=conn)
            reco.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.execute(sa.select(ident.c.value).where(ident.c.person_id == pid)).all()
            floor.append(time.perf_counter() - started)
    store.dispose()
    for prof in (profiler, served_profiler):
        if prof is not None:
            stats = pstats.Stats(prof, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(20)
    decide_s = _summary(timings)
    floor_s = _summary(floor)
    return {
        "decisions": len(timings),
        "decide": decide_s,
        "queries_per_decision": round(len(sent) / len(timings), 2),
        "decisions_per_s": round(len(timings) / sum(timings), 1),
        "served": {
            **_summary(served),
            "view_build_s": round(built, 2),
            "decisions_per_s": round(len(served) / sum(served), 1),
            "queries_per_decision": round(len(served_sent) / len(served), 2),
        },
        "recommend": _summary(reco),
        "floor_one_query": floor_s,
        "decide_p50_over_floor": round(decide_s["p50_ms"] / max(floor_s["p50_ms"], 1e-9), 1),
    }


def main() -> None:
    os.environ.update(KEYS)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000, help="as `make demo`")
    parser.add_argument("--rate", type=float, default=1_000)
    parser.add_argument(
        "--rates", type=float, nargs="+", help="open loops at these rates too (after --rate)"
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--products", type=int, default=4, help="recommendations per decision (0: none)"
    )
    parser.add_argument("--skip-render", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--calls", type=int, default=2_000, help="decisions timed in process")
    parser.add_argument("--profile", action="store_true", help="cProfile the decisions")
    parser.add_argument("--db", type=Path, help="DuckDB file for the in-process part (kept)")
    parser.add_argument(
        "--world", type=Path, help="folder of the API part's world: built once, then reused"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--postgres", nargs="?", const=DEFAULT_PG, help="run the API part on PostgreSQL"
    )
    parser.add_argument("--baseline", metavar="REF", help="compare the API with a commit")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline")
    parser.add_argument("--port", type=int, help="the server's port (with --baseline: 2 ports)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--identifiers", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port or 18_000)
        return
    if args.identifiers:
        print_identifiers(args.identifiers)
        return
    if args.baseline is not None:
        import decide_baseline

        args.port = args.port or 18_000 + os.getpid() % 1000
        decide_baseline.main(args)
        return
    report: dict[str, Any] = {}
    if not args.skip_render:
        report["render"] = bench_render(args.people)
        if not args.json:
            print("render:", orjson.dumps(report["render"]).decode(), flush=True)
    if not args.skip_api:
        report["api"] = bench_api(
            args.customers,
            args.rate,
            args.seconds,
            args.clients,
            args.postgres,
            args.products,
            args.port,
            args.world,
            args.rates,
        )
        if not args.json:
            print("api:", orjson.dumps(report["api"]).decode(), flush=True)
    if not args.skip_inprocess:
        with tempfile.TemporaryDirectory() as tmp:
            db = args.db or Path(tmp) / "inprocess.duckdb"
            if not db.exists():
                build_store(db.parent / f"{db.stem}-files", args.customers, f"duckdb:///{db}")
            report["inprocess"] = bench_inprocess(
                f"duckdb:///{db}", args.calls, args.products, args.profile
            )
        if not args.json:
            print("in process:", orjson.dumps(report["inprocess"]).decode(), flush=True)
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
