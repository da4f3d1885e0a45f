"""The decision server's serving cache: how fast a collected change reaches decisions, and
the server's memory.

On a demo store (``surmesure demo --customers N``, DuckDB), the API server runs in its own
process (as in bench_decide.py) from the source tree ``--src`` (this tree by default; give
another checkout's ``src`` to compare with it) and measures:

(a) the time from a collected change (``POST /v1/identify`` for a known customer carrying a
    refusal of personalization, ``context.consent.categoryPreferences``, answered 200) to the
    first ``POST /v1/decide`` whose e-mail no longer greets the customer by name (polled every
    5 ms), over ``--changes`` customers in turn, each decided for once before (held);
(b) the server's resident memory (``VmRSS``) once started, after its first decision and after
    ``--decisions`` decisions for distinct known customers;
(c) with ``--rate``, an open loop of decisions at that rate for ``--seconds`` (customers and
    visitors drawn from the whole world: most are read on a miss), its p50 and p99, and the
    memory after it;
(d) in a process of its own (unless ``--skip-inprocess``), served decisions called directly
    (no HTTP) for ``--decisions`` customers, twice: the first pass reads each person, the
    second finds them in memory (the hot path, ~0.4 ms before the per-person cache).

    python benchmarks/bench_serving.py [--customers 50000] [--db FILE] [--src PATH]
        [--changes 20] [--decisions 2000] [--port PORT] [--rate R] [--seconds S]
        [--skip-inprocess]
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
from pathlib import Path
from typing import Any

import httpx
import orjson

import bench_decide
from surmesure.decide.library import EXAMPLES, Library

HERE = Path(__file__).resolve().parent
WRITE_KEY = bench_decide.WRITE_KEY


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


def email(client: httpx.Client, key: str, customer: str) -> dict[str, Any]:
    answer = client.post(
        "/v1/decide",
        json={"placement": "email_weekly", "customer_id": customer, "products": 0},
        auth=(key, ""),
    )
    answer.raise_for_status()
    return dict(answer.json())


def run(args: argparse.Namespace, db: Path) -> dict[str, Any]:
    url = f"duckdb:///{db}"
    demo = db.parent / f"{db.stem}-files"
    if not db.exists():
        bench_decide.build_store(demo, args.customers, url)
    keys = dict(line.split("=", 1) for line in (demo / "demo" / "keys.env").read_text().split())
    decide_key = keys["SURMESURE_DEMO_DECIDE_KEY"]
    from surmesure.store import open_store

    store = open_store(url)
    held = bench_decide.held_identifiers(store)
    customers = [v for k, v, _ in held if k == "customer_id"]
    visitors = [v for k, v, _ in held if k == "anonymous_id"]
    store.dispose()
    port = args.port or 18_500 + os.getpid() % 500
    server = start(url, port, args.src)
    report: dict[str, Any] = {"src": str(args.src), "demo_customers": args.customers}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            report["rss_started_mb"] = rss_mb(server.pid)
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
                # customers and visitors drawn from the whole world, most not held yet
                rng = random.Random(5)
                payloads = bench_decide.bodies(
                    rng.sample(customers, min(len(customers), 50_000)),
                    rng.sample(visitors, min(len(visitors), 50_000)),
                    int(args.rate * args.seconds),
                    0,
                )
                report["open_loop"] = asyncio.run(
                    bench_decide.open_loop(
                        port, "/v1/decide", payloads, args.rate, args.seconds, key=decide_key
                    )
                )
                report["rss_after_open_loop_mb"] = rss_mb(server.pid)
            waits = []
            # customers greeted by their name, each decided for once before (held)
            chosen = []
            for customer in customers[args.decisions :]:
                said = email(client, decide_key, customer)
                fields = (said["explanation"].get("content") or {}).get("fields") or []
                if any(f["field"] == "first_name" and f["used"] for f in fields):
                    chosen.append((customer, str(said["content"]["body"]).split(",")[0]))
                if len(chosen) == args.changes:
                    break
            report["changed_customers"] = len(chosen)
            waits = []
            for customer, greeting in chosen:
                sent = client.post(
                    "/v1/identify",
                    json={
                        "userId": customer,
                        "messageId": uuid.uuid4().hex,
                        "context": {"consent": {"categoryPreferences": {"personalization": False}}},
                    },
                    auth=(WRITE_KEY, ""),
                )
                sent.raise_for_status()
                stored = time.perf_counter()
                while True:
                    body = str(
                        (email(client, decide_key, customer).get("content") or {}).get("body")
                    )
                    if not body.startswith(greeting):
                        waits.append(time.perf_counter() - stored)
                        break
                    if time.perf_counter() - stored > 60:
                        waits.append(float("inf"))
                        break
                    time.sleep(0.005)
            ordered = sorted(waits)
            report["collected_change_to_decision_s"] = {
                "changes": len(waits),
                "median": round(ordered[len(ordered) // 2], 3),
                "max": round(ordered[-1], 3),
            }
            report["rss_at_end_mb"] = rss_mb(server.pid)
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
    customers = [v for k, v, _ in bench_decide.held_identifiers(store) if k == "customer_id"]
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
    parser.add_argument("--src", type=Path, default=HERE.parent / "src")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--port", type=int)
    parser.add_argument("--rate", type=float, default=0, help="an open loop at this rate")
    parser.add_argument("--seconds", type=float, default=10, help="of the open loop")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--inprocess", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inprocess:
        print(orjson.dumps(inprocess(args.inprocess, args.decisions)).decode())
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "serving.duckdb"
        report = run(args, db)
        if not args.skip_inprocess:
            report["in_process"] = run_inprocess(f"duckdb:///{db}", args.src, args.decisions)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
