"""The segment builder's live size (``POST /console/segments/preview``, as htmx sends it while
a marketer types) on the demo world and on a world of ``--customers`` people, beside the
service it calls (:func:`surmesure.segment.membership.size`) timed in the same process, and
the section's pages (the list, the builder).

    .venv/bin/python benchmarks/bench_console_segments.py [--customers 1000000]
        [--demo-customers 1500] [--calls 30] [--db FILE] [--demo DIR] [--json]

The demo world is built by ``surmesure demo`` (in a process of its own, as ``make demo``
builds it); the large world is generated in DuckDB SQL as ``bench_segment.py`` generates it
(people, traits, derived metrics, events, orders: the tables a segment reads), which takes
seconds where importing files of a million customers takes many minutes (``--db FILE`` keeps
it for the next run). The app runs in this process (Starlette's test client, no network), a
marketer signed in through the sign-in form; the definition is the issue's example, an RFM
segment and a metric threshold. Each call's wall time and the process's CPU time are printed
(median and 95th percentile); the ratio route / service is the console's own cost, the figure
to compare across runs on a loaded machine. Target (issue #17): the live size under 1 s on
1,000,000 customers; every page under 300 ms on the demo world.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

KEYS = {
    "SURMESURE_SECRET_KEY": "bench-console-secret",
    "SURMESURE_SUPPRESSION_KEY": "bench-suppression-key",
    "SURMESURE_ENCRYPTION_KEY": "bench-encryption-key",
}
os.environ.update(KEYS)  # before any setting is read: the demo world is sealed under them

from bench_segment import generate  # noqa: E402
from surmesure.clock import utcnow  # noqa: E402
from surmesure.domain.segments import SegmentDefinition  # noqa: E402
from surmesure.segment import membership, repository  # noqa: E402
from surmesure.store import Store, open_store  # noqa: E402
from surmesure.store.span import present  # noqa: E402

EMAIL, PASSWORD = "bench@console.test", "a long enough bench passphrase"
FORM = {
    "name": "bench_live",
    "join": "all",
    "c0.kind": "metric",
    "c0.name": "rfm_segment",
    "c0.op": "eq",
    "c0.value": "Champions",
    "c1.kind": "metric",
    "c1.name": "monetary",
    "c1.op": "ge",
    "c1.value": "200",
}
DEFINITION = SegmentDefinition.model_validate(
    {
        "name": "bench_live",
        "where": {
            "all": [
                {"metric": {"name": "rfm_segment", "op": "eq", "value": "Champions"}},
                {"metric": {"name": "monetary", "op": "ge", "value": 200}},
            ]
        },
    }
)


def demo_world(folder: Path, customers: int) -> str:
    url = f"duckdb:///{folder / 'demo.duckdb'}"
    if (folder / "demo.duckdb").exists():
        return url
    command = [sys.executable, "-m", "surmesure.cli.main", "demo", "--customers", str(customers),
               "--out", str(folder / "world"), "--no-send", "--json"]  # fmt: skip
    env = {**os.environ, "SURMESURE_DATABASE_URL": url}
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=1800)
    return url


def timed(calls: int, call: Callable[[], Any]) -> dict[str, Any]:
    """Per-call wall and CPU seconds (the first call apart: it warms the caches)."""
    start, cpu = time.perf_counter(), time.process_time()
    first = call()
    first_s = time.perf_counter() - start
    walls, cpus = [], []
    for _ in range(calls):
        start, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)

    def p95(values: list[float]) -> float:
        return sorted(values)[max(0, round(0.95 * len(values)) - 1)]

    return {
        "first_s": first_s,
        "median_s": statistics.median(walls),
        "p95_s": p95(walls),
        "cpu_median_s": statistics.median(cpus),
        "cpu_p95_s": p95(cpus),
        "result": first,
    }


def measure(store: Store, calls: int) -> dict[str, Any]:
    from starlette.testclient import TestClient

    from surmesure.api.app import create_app
    from surmesure.config import get_settings
    from surmesure.protect.users import create_user

    create_user(store, EMAIL, PASSWORD, "marketer", replace=True)
    app = create_app(get_settings().model_copy(update={"write_keys": {"bench-key": "web"}}), store)
    found: dict[str, Any] = {}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        form = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        signed = client.post("/console/login", data={"csrf": token.group(1), "email": EMAIL,
                                                      "password": PASSWORD},
                             follow_redirects=False)  # fmt: skip
        assert signed.status_code == 303, signed.text[:300]
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/console/").text)
        assert csrf is not None
        headers = {"X-CSRF-Token": csrf.group(1), "HX-Request": "true"}

        def route() -> int:
            answer = client.post("/console/segments/preview", data=FORM, headers=headers)
            size = re.search(r'data-size="(\d+)"', answer.text)
            assert answer.status_code == 200 and size is not None, answer.text[:500]
            return int(size.group(1))

        def service() -> int:
            now = present(store, utcnow())[0]
            with store.connect() as conn:
                known = repository.catalog(conn)
            return membership.size(store, DEFINITION, now, known)

        def page(path: str) -> Callable[[], int]:
            def get() -> int:
                answer = client.get(path)
                assert answer.status_code == 200, answer.text[:300]
                return len(answer.text)

            return get

        found["service"] = timed(calls, service)
        found["route"] = timed(calls, route)
        assert found["route"]["result"] == found["service"]["result"]
        # the list with the segment saved and its members recorded (a refresh, as a marketer
        # would press it): its trend, overlap and members are read from them
        repository.save(store, DEFINITION, utcnow())
        membership.refresh(store, [DEFINITION.name], present(store, utcnow())[0])
        found["list page"] = timed(max(3, calls // 3), page("/console/segments"))
        found["builder page"] = timed(max(3, calls // 3), page("/console/segments/new"))
    return found


def report(world: str, found: dict[str, Any]) -> None:
    print(f"\n{world}: live size {found['route']['result']:,} people")
    print(f"  {'':14} {'first':>8} {'median':>8} {'p95':>8} {'cpu med':>8} {'cpu p95':>8}")
    for name, t in found.items():
        print(f"  {name:14} " + " ".join(f"{t[k] * 1000:7.1f}ms" for k in
              ("first_s", "median_s", "p95_s", "cpu_median_s", "cpu_p95_s")))  # fmt: skip
    ratio = found["route"]["cpu_median_s"] / max(found["service"]["cpu_median_s"], 1e-9)
    print(f"  route / service (CPU, median): {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--demo-customers", type=int, default=1_500)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--db", type=Path, help="keep the generated large world in this file")
    parser.add_argument("--demo", type=Path, help="keep the demo world in this folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="surmesure-bench-console-") as tmp:
        folder = Path(tmp)
        url = demo_world(args.demo or folder, args.demo_customers)
        store = open_store(url)
        try:
            results[f"demo world ({args.demo_customers:,} customers)"] = measure(store, args.calls)
        finally:
            store.dispose()
        path = args.db or folder / "large.duckdb"
        reuse = path.exists()
        store = open_store(f"duckdb:///{path}")
        try:
            if not reuse:
                start = time.perf_counter()
                generate(store, args.customers)
                print(f"generated {args.customers:,} people in {time.perf_counter() - start:.1f} s")
            name = f"generated world ({args.customers:,} customers)"
            results[name] = measure(store, args.calls)
        finally:
            store.dispose()
    if args.json:
        print(orjson.dumps(results).decode())
        return
    for world, found in results.items():
        report(world, found)


if __name__ == "__main__":
    main()
