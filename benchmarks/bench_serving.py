"""The decision server's serving cache: how fast a collected change reaches decisions, and
the server's memory.

On a demo store (``surmesure demo --customers N``, DuckDB), the API server runs in its own
process (as in bench_decide.py) from the source tree ``--src`` (this tree by default; give
another checkout's ``src`` to compare with it) and measures:

(a) the time from a collected change, answered 200, to the first ``POST /v1/decide`` that
    shows it (polled every 5 ms), for each of three kinds over ``--changes`` customers each,
    every one greeted by name, offered products and decided for once before (held): a
    refusal of personalization (``POST /v1/identify`` with
    ``context.consent.categoryPreferences``: the greeting loses the name), a new first name
    from the CRM (``/v1/identify`` traits: the greeting says it) and a web purchase of the
    first product offered (``POST /v1/track`` ``Order Completed``: no longer offered);
(b) the server's resident memory (``VmRSS``) once started, once ``/health`` says its
    decisions are ready (everyone read into memory, held or packed: the seconds it took),
    after its first decision and after ``--decisions`` decisions for distinct known customers,
    at the end, and settled (``RELEASE_EVERY`` seconds after, once the pages the changes'
    re-reads cached were let go);
(c) with ``--rate``, an open loop of decisions at that rate for ``--seconds`` (customers and
    visitors drawn from up to 100,000 of each: beyond the cache's bound, most are unpacked,
    or read on a miss where the world is not packed), each asking for ``--products``
    recommendations (none by default, as in the figures below): its p50 and p99, and the
    memory after it;
(d) in a process of its own (unless ``--skip-inprocess``), served decisions called directly
    (no HTTP) for ``--decisions`` customers, twice: the first pass reads each person, the
    second finds them in memory (the hot path, ~0.4 ms before the per-person cache).

``--duckdb-memory 1GB`` bounds the server's DuckDB (its ``memory_limit``, in the store's URL).
``--world DIR`` measures the world ``bench_decide.py --world DIR`` built (``DIR/world.duckdb``),
such as a 1,000,000-customer one.

    python benchmarks/bench_serving.py [--customers 50000] [--db FILE] [--world DIR]
        [--src PATH] [--changes 20] [--decisions 2000] [--port PORT] [--rate R] [--seconds S]
        [--skip-inprocess] [--duckdb-memory SIZE]

Measured on the generated world of 1,000,000 customers (1,341,724 people, 14.3 million trait
rows; ``--world /work/world1m --rate 1000 --seconds 15 --decisions 500 --changes 10
--skip-inprocess``, a quiet machine), everyone packed at start (the server's defaults):

- ready (everyone packed) 250 s after start;
- 500 decisions one after another: 1.23 ms each (16.2 ms when most were read on a miss);
- open loop at 1,000/s: 999.9/s served, p50 1.77 ms, p99 77 ms, p99.9 88 ms (129.5/s served
  and a p99 of 39 s when most were read on a miss);
- a consent reaches the next decision in 0.21 s (median; max 0.21), a CRM trait in 0.06 s
  (max 0.07), a web purchase in 0.28 s (max 0.36);
- resident memory 2,961 MB once started, before anything is packed (the recommendation model
  of a million people and DuckDB's pages), 3,848 MB packed, 4,231 MB at the end.

Again, with the recommendation model's purchases held in arrays (a world built the same way;
the machine quiet but for the load generator): 1,549 MB once started, 2,364 MB packed (ready
after 410 s), 2,715 MB at the end; a consent reached the next decision in 0.14 s (max 0.29), a
CRM trait in 0.09 s (max 0.16), a web purchase in 0.20 s (max 0.36); 500 decisions one after
another took 2.88 ms each, and the open loop at 1,000/s served only 746/s (p50 2.6 s).

That gap is the machine's spread, not the code's: on a 300,000-customer world (``--rate 1000
--seconds 40 --decisions 300 --changes 2``), d2a5e4d's code and a7434fa's, run in turn,
served 604, 630, 641 and 1,000/s against 922 and 637/s, decisions one after another took 1.8
to 4.6 ms against 2.0 and 3.1 ms, and their profiles of the interpreter lock under the open
loop have the same shape (the decision 36%, reading the person 18%, unpacking and packing
people past the cache's 10,000 held 10%, FastAPI and uvicorn 20%, the decision log 5%). A
decision holds the lock about 1 ms: at 1,000/s the server runs at the edge of one processor,
and a run tips into a growing queue as the machine's other work varies. Memory is lower:
1,412 MB ready against 1,800, 1,696 MB at the end against 2,014.

On a million customers again (the world built anew in 51 minutes; ``--rate 1000 --seconds 60
--decisions 300 --changes 3 --skip-inprocess``, the machine quiet), with the garbage
collector's pauses logged (over 3 ms) in the server:

- 10,000 people held as objects and 20,000 recommended lists kept (deaa054): 1,000/s served,
  p50 1.52 ms, p99 68 ms, p99.9 181 ms; young collections of 28 to 76 ms every 3.5 s and one
  of the middle generation of 193 ms, where a second of requests piled up (412 slow);
  2,399 MB ready, 2,557 MB at the end;
- 1,000 held and 2,000 lists (d118636): p50 1.37 ms, p99 12.4 ms, p99.9 41 ms; young
  collections of 13 to 18 ms; 2,569 MB ready, 2,661 MB at the end;
- the same with the youngest generation collected every 3,000 allocations, not 10,000: p99
  26.8 ms (not kept);
- the same letting go of DuckDB's pages of the start's whole read (about 1 GB: it keeps them
  up to its memory limit, 80% of the machine's): 1,510 and 1,612 MB ready, but decisions
  took 40% longer (1.57 and 1.82 ms one after another against 1.15) and p99 was 261 and 446
  ms in two runs (not kept: why those pages matter to decisions is still to find).

Where the memory lies, read in one process (``get_model`` then the packing): 309 MB once
the libraries are imported, 452 MB with the store open, 1,471 MB with the recommendation
model (DuckDB's read pages 398 MB, the people's factors 164 MB, their purchases 68 MB), 2,566
MB packed (the packed people 370 MB, DuckDB's pages 964 MB); ``malloc_trim`` gives back 170
MB.

The young collections' pauses came from what a decision leaves alive: on 100,000 customers at
600 decisions a second, each young collection walked some 34,000 objects, 30,000 of them the
1,000 people held as objects (of the last second or so: a held person is rarely asked for
again), the rest mostly the decision log's memory of what it wrote. With 100 held (ec9e1cb),
15,000; with that memory kept as columns too (e1d41e8), 12,000 to 16,000, mostly tuples of
texts that a pass stops tracking (the columns take the log's memory out of the full
collections' walks: some 60,000 objects at 1,000 decisions a second).

On the million-customer world built anew (the machine slower that day: 300 decisions one after
another took 1.59 to 2.4 ms, not 1.15 to 1.23), run in turn: 7b4dab8's code fell behind
(946.8/s served, p50 263 ms), with young collections of 26 to 47 ms every 3 to 4 s;
e1d41e8's served 998.5/s, p50 2.09 ms, p99 255 ms (one stall of two seconds), with young
collections of 5 to 29 ms every 10 s or so; run again, and with DuckDB held to one thread, it
fell behind too (979 and 903/s).

DuckDB's pages of the start's whole read, let go in one process with everyone packed (``get
model`` and the serving thread, 3,000 decisions a round): 2,765 MB resident before, 1,510 MB
after; decisions took 0.368 to 0.471 ms in the four rounds before and 0.372 to 0.440 ms in the
four after (0.42 to 0.55 ms of CPU against 0.45 to 0.59): they read none of those pages. The
server letting them go at the end of its start: 1,603 MB ready, 1,620 MB after 300
decisions, 1,891 MB after the open loop (999.9/s served, behind: p50 435 ms), 2,290 MB at the
end. In one process, the safety net's fingerprint and whole parts read after that add 70 MB
(1,603 to 1,674 MB); the rest of the growth is not placed yet (the decision log's rows, held
in memory until a checkpoint, are some of it).

With ``POST /v1/decide`` answered before FastAPI's routing (472fbf5), a packed person whose
ledger alone changed packed back as their old text and the new ledger (afa0e67) and their
lookups searched holding the interpreter lock (c3808d8), a world built anew, the machine
quiet: ready after 247 s at 1,432 MB; 300 decisions one after another 1.65 ms each; the open
loop served 999.7/s, p50 1.9 ms, p99 140 ms, p99.9 168 ms, all but one second fast (584 slow
requests in its 52nd); a consent reached the next decision in 0.09 s, a CRM trait in 0.08 s,
a purchase in 0.12 s; 1,661 MB after the open loop, 2,054 MB at the end. Two runs more, with
the collector's passes and the serving thread's work logged in the server (a
``sitecustomize`` outside the tree), served 1,000.0 and 998.7/s with p50 15.4 and 20.0 ms,
p99 168 and 188 ms (the second with ``SURMESURE_DECISION_FLUSH_MS=1000``: no better), and
showed where the time goes:

- the slow second is a compaction of the packed world (1.5 s in the serving thread, once
  20,000 people were packed again): it indexes all 1.37 million people anew, while the
  decisions, the load generator and DuckDB share the two processors;
- each write of the decision log took 80 to 200 ms (250 ms apart) or 150 to 350 ms (1 s apart),
  some 40 ms of it reading the data keys of the people decided for (an ``IN`` of 300 ids
  scans the 1.39 million keys: 1,000 ids cost about as much);
- young collections took 6 to 12 ms every quarter second while serving, middle ones 21 to 38
  ms every 2.5 s, one full one 96 to 103 ms; during the start's whole read young ones took 20
  to 35 ms every half second.

Letting go every 10 s of the pages that re-reads of changed people cached (``RELEASE_EVERY``:
on DuckDB a person's re-read scans the tables; in one process, nine changes on this world
cached 217 MB of table pages, ready 1,719 MB, 1,913 MB after them), run once: ready after
279 s at 1,429 MB, 1,717 MB after the open loop, **1,925 MB at the end** (2,054 to 2,214
before); open loop 1,000/s served, p50 1.8 ms, p99 42.5 ms, p99.9 84 ms (two slow seconds);
a consent reached the next decision in 0.10 s, a CRM trait in 0.12 s, a purchase in 0.12 s.

Per request, through the ASGI app in one process (100,000 customers, everyone packed, 5,000
decisions a round, no products, the CPU time of the calling thread): 0.69 to 0.98 ms before
472fbf5, 0.53 to 0.57 ms after; 0.53 to 0.57 ms before afa0e67, 0.47 to 0.50 ms after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

import bench_decide
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.serving import RELEASE_EVERY

HERE = Path(__file__).resolve().parent
WRITE_KEY = bench_decide.WRITE_KEY
CRM_KEY = bench_decide.CRM_KEY
HELD = 100_000  # the customers and visitors asked for, at most, of each kind


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid``, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def start(url: str, port: int, src: Path) -> subprocess.Popen[bytes]:
    """The server of bench_decide.py, importing surmesure from ``src``."""
    path = os.pathsep.join([str(src), str(HERE)])
    env = {**os.environ, "SURMESURE_DATABASE_URL": url, "PYTHONPATH": path}
    return bench_decide.start_server(url, port, env)


def ready(client: httpx.Client, limit: float = 1_800) -> float:
    """Seconds until ``/health`` says decisions are served from memory (everyone read at
    start; a server that does not say is taken as ready)."""
    started = time.perf_counter()
    while client.get("/health").json().get("decisions", "ready") != "ready":
        if time.perf_counter() - started > limit:
            raise RuntimeError("the server's cache did not warm")
        time.sleep(0.5)
    return round(time.perf_counter() - started, 1)


def email(client: httpx.Client, key: str, customer: str, products: int = 0) -> dict[str, Any]:
    answer = client.post(
        "/v1/decide",
        json={"placement": "email_weekly", "customer_id": customer, "products": products},
        auth=(key, ""),
    )
    answer.raise_for_status()
    return dict(answer.json())


Change = Callable[[httpx.Client, str, dict[str, Any]], Callable[[dict[str, Any]], bool]]


def greeted(client: httpx.Client, key: str, customers: list[str], count: int) -> list[str]:
    """Up to ``count`` of ``customers`` greeted by their name and offered products, each
    decided for once (held by the server)."""
    chosen = []
    for customer in customers:
        said = email(client, key, customer, products=4)
        fields = (said["explanation"].get("content") or {}).get("fields") or []
        if said["products"] and any(f["field"] == "first_name" and f["used"] for f in fields):
            chosen.append(customer)
        if len(chosen) == count:
            break
    return chosen


def refuse(client: httpx.Client, customer: str, said: dict[str, Any]) -> Any:
    """A refusal of personalization (``/v1/identify``): the greeting loses the name."""
    greeting = str(said["content"]["body"]).split(",")[0]
    context = {"consent": {"categoryPreferences": {"personalization": False}}}
    collect(client, "identify", WRITE_KEY, {"userId": customer, "context": context})
    return lambda now: not str(now["content"]["body"]).startswith(greeting)


def rename(client: httpx.Client, customer: str, said: dict[str, Any]) -> Any:
    """A new first name from the CRM (``/v1/identify``): the greeting says it."""
    name = f"Zoé{uuid.uuid4().hex[:6]}"
    collect(client, "identify", CRM_KEY, {"userId": customer, "traits": {"first_name": name}})
    return lambda now: f"Bonjour {name}" in str(now["content"]["body"])


def buy(client: httpx.Client, customer: str, said: dict[str, Any]) -> Any:
    """A web purchase of the first product recommended (``Order Completed``): it is no
    longer recommended."""
    code = str(said["products"][0]["product_code"])
    order = {"order_id": uuid.uuid4().hex, "total": 10.0, "currency": "EUR",
             "products": [{"product_id": code, "price": 10.0, "quantity": 1}]}  # fmt: skip
    body = {"userId": customer, "event": "Order Completed", "properties": order}
    collect(client, "track", WRITE_KEY, body)
    return lambda now: code not in {str(p["product_code"]) for p in now["products"]}


def collect(client: httpx.Client, kind: str, key: str, body: dict[str, Any]) -> None:
    sent = client.post(f"/v1/{kind}", json={**body, "messageId": uuid.uuid4().hex}, auth=(key, ""))
    sent.raise_for_status()


def fresh_after(
    client: httpx.Client, key: str, customers: list[str], change: Change
) -> dict[str, Any]:
    """Per customer, the seconds from a collected ``change`` (answered 200) to the first
    decision that shows it (polled every 5 ms; at most 60 s, then ``inf``)."""
    waits = []
    for customer in customers:
        shows = change(client, customer, email(client, key, customer, products=4))
        stored = time.perf_counter()
        while not shows(email(client, key, customer, products=4)):
            if time.perf_counter() - stored > 60:
                break
            time.sleep(0.005)
        waited = time.perf_counter() - stored
        waits.append(waited if waited <= 60 else float("inf"))
    ordered = sorted(waits) or [float("nan")]
    return {
        "changes": len(waits),
        "median": round(ordered[len(ordered) // 2], 3),
        "max": round(ordered[-1], 3),
    }


def files_of(db: Path, world: Path | None) -> Path:
    """Where the demo files of the store ``db`` are (``demo/keys.env`` among them)."""
    return world if world is not None else db.parent / f"{db.stem}-files"


def run(args: argparse.Namespace, db: Path) -> dict[str, Any]:
    url = f"duckdb:///{db}"
    server_url = url if not args.duckdb_memory else f"{url}?memory_limit={args.duckdb_memory}"
    demo = files_of(db, args.world)
    if not db.exists():
        bench_decide.build_store(demo, args.customers, url)
    keys = dict(line.split("=", 1) for line in (demo / "demo" / "keys.env").read_text().split())
    decide_key = keys["SURMESURE_DEMO_DECIDE_KEY"]
    from surmesure.store import open_store

    store = open_store(url)
    held = bench_decide.held_identifiers(store, HELD)
    customers = [v for k, v, _ in held if k == "customer_id"]
    visitors = [v for k, v, _ in held if k == "anonymous_id"]
    store.dispose()
    port = args.port or 18_500 + os.getpid() % 500
    server = start(server_url, port, args.src)
    report: dict[str, Any] = {"src": str(args.src), "demo_customers": args.customers}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            report["rss_started_mb"] = rss_mb(server.pid)
            report["ready_s"] = ready(client)
            report["rss_ready_mb"] = rss_mb(server.pid)
            started = time.perf_counter()
            email(client, decide_key, customers[0])
            report["first_decision_s"] = round(time.perf_counter() - started, 2)
            report["rss_after_first_decision_mb"] = rss_mb(server.pid)
            started = time.perf_counter()
            for customer in customers[1 : args.decisions]:
                email(client, decide_key, customer)
            spent = time.perf_counter() - started
            report["decisions"] = args.decisions
            report["decision_mean_ms"] = round(1e3 * spent / max(args.decisions - 1, 1), 2)
            report["rss_after_decisions_mb"] = rss_mb(server.pid)
            if args.rate:
                # customers and visitors drawn from up to HELD of each, most not held yet
                rng = random.Random(5)
                payloads = bench_decide.bodies(
                    rng.sample(customers, min(len(customers), 50_000)),
                    rng.sample(visitors, min(len(visitors), 50_000)),
                    int(args.rate * args.seconds),
                    args.products,
                )
                report["open_loop"] = asyncio.run(
                    bench_decide.open_loop(
                        port, "/v1/decide", payloads, args.rate, args.seconds, key=decide_key
                    )
                )
                report["rss_after_open_loop_mb"] = rss_mb(server.pid)
            chosen = greeted(client, decide_key, customers[args.decisions :], 3 * args.changes)
            report["changed_customers"] = len(chosen)
            changes = args.changes
            report["collected_change_to_decision_s"] = {
                "consent": fresh_after(client, decide_key, chosen[:changes], refuse),
                "trait": fresh_after(client, decide_key, chosen[changes : 2 * changes], rename),
                "purchase": fresh_after(client, decide_key, chosen[2 * changes :], buy),
            }
            report["rss_at_end_mb"] = rss_mb(server.pid)
            time.sleep(RELEASE_EVERY + 2)  # the pages the changes' re-reads cached are let go
            report["rss_settled_mb"] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return report


def inprocess(url: str, count: int) -> dict[str, Any]:
    """Served decisions in this process (``decide`` with a started :class:`Serving`) for
    ``count`` known customers, twice: the first pass reads each person (a whole view or one
    statement each), the second finds them in memory."""
    from surmesure.decide.service import DecideRequest, decide
    from surmesure.decide.serving import Serving
    from surmesure.store import open_store

    store = open_store(url)
    library = Library(EXAMPLES)
    customers = [v for k, v, _ in bench_decide.held_identifiers(store, count) if k == "customer_id"]
    requests = [DecideRequest("email_weekly", customer_id=c, products=0) for c in customers]
    serving = Serving(store)
    started = time.perf_counter()
    serving.ensure_started(library.metrics())
    out: dict[str, Any] = {"started_s": round(time.perf_counter() - started, 2)}
    compiled = library.for_placement("email_weekly")
    for name in ("first_pass", "second_pass"):
        timings = []
        for request in requests[:count]:
            started = time.perf_counter()
            decide(store, request, compiled, use_default_recommender=False, serving=serving)
            timings.append(time.perf_counter() - started)
        out[name] = {
            "p50_ms": round(1e3 * bench_decide.percentile(timings, 0.5), 3),
            "p99_ms": round(1e3 * bench_decide.percentile(timings, 0.99), 3),
        }
    serving.stop()
    store.dispose()
    return out


def run_inprocess(url: str, src: Path, count: int) -> dict[str, Any]:
    """:func:`inprocess` in a process importing surmesure from ``src``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(HERE)])}
    done = subprocess.run(
        [sys.executable, __file__, "--inprocess", url, "--decisions", str(count)],
        env=env,
        check=True,
        capture_output=True,
    )
    return dict(orjson.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--db", type=Path, help="DuckDB file of the demo store (kept)")
    parser.add_argument(
        "--world", type=Path, help="a world of bench_decide.py --world (its store and keys)"
    )
    parser.add_argument("--src", type=Path, default=HERE.parent / "src")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--port", type=int)
    parser.add_argument(
        "--duckdb-memory", help="the server's DuckDB memory_limit (e.g. 1GB; default DuckDB's)"
    )
    parser.add_argument("--rate", type=float, default=0, help="an open loop at this rate")
    parser.add_argument("--seconds", type=float, default=10, help="of the open loop")
    parser.add_argument(
        "--products",
        type=int,
        default=0,
        help="products recommended in each of the open loop's decisions (0: none, as measured)",
    )
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--inprocess", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inprocess:
        print(orjson.dumps(inprocess(args.inprocess, args.decisions)).decode())
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "serving.duckdb"
        if args.world is not None:
            db = args.world / "world.duckdb"
        report = run(args, db)
        if not args.skip_inprocess:
            report["in_process"] = run_inprocess(f"duckdb:///{db}", args.src, args.decisions)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
