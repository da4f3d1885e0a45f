"""From a collected event to the journey's send recorded in the outbox: latency percentiles at a
steady rate (``--rate``, default 1,000 events/s, for ``--seconds``, default 10).

``surmesure serve`` runs in its own process on a DuckDB store where a journey is published
(entry: ``Signed Up``; first step: an e-mail). A lean client sends one ``/v1/track`` call per
event, each from a new visitor, paced at the rate, on a few kept-alive connections. The
latency of an event is the time from the server receiving it (``events.received_at``) to its
send recorded in the outbox (``messages.planned_at``), both on the server's clock.

    python benchmarks/bench_journey_latency.py [--rate 1000] [--seconds 10] [--json]

Target (issue 14): p99 under 1 s at 1,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from rich.console import Console

from bench_collect import cpu_seconds, serve
from loadgen import exchange, request_bytes
from surmesure.clock import utcnow
from surmesure.journeys import published
from surmesure.journeys.document import parse
from surmesure.store import open_store, schema

WRITE_KEY = "bench-key"
TARGET_P99 = 1.0
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


async def _send(port: int, rate: float, seconds: float, connections: int) -> tuple[int, int]:
    """Events sent on time, paced at ``rate``; (sent, refused)."""
    run = uuid.uuid4().hex[:8]
    total = int(rate * seconds)
    queue: asyncio.Queue[int] = asyncio.Queue()
    counts = [0, 0]

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            i = await queue.get()
            if i < 0:
                break
            request = request_bytes(port, "POST", "/v1/track", _body(i, run), WRITE_KEY)
            ok, _, _ = await exchange(reader, writer, request)
            counts[0 if ok else 1] += 1
        writer.close()

    tasks = [asyncio.create_task(client()) for _ in range(connections)]
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(i)
    for _ in tasks:
        queue.put_nowait(-1)
    await asyncio.gather(*tasks)
    return counts[0], counts[1]


def run(
    rate: float, seconds: float, connections: int, console: Console, journey: bool = True
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"duckdb:///{Path(folder) / 'latency.duckdb'}"
        store = open_store(url)
        if journey:
            published.publish(store, parse(JOURNEY), utcnow())
        store.dispose()
        port = 18461
        server = serve(url, port)
        try:
            began, cpu = time.perf_counter(), cpu_seconds(server.pid)
            sent, refused = asyncio.run(_send(port, rate, seconds, connections))
            elapsed = time.perf_counter() - began
            cpu = cpu_seconds(server.pid) - cpu
            time.sleep(2.0)  # the last events reach the outbox
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        store = open_store(url)
        e, m = schema.events, schema.messages
        with store.connect() as conn:
            rows = conn.execute(
                sa.select(e.c.received_at, m.c.planned_at).select_from(
                    e.join(m, m.c.person_id == e.c.person_id)
                )
            ).all()
        store.dispose()
    waits = np.asarray([(p - r).total_seconds() for r, p in rows])
    return {
        "rate": rate,
        "achieved_rate": round(sent / elapsed),
        "connections": connections,
        "server_cpu_ms_per_event": round(1000 * cpu / max(sent, 1), 2),
        "sent": sent,
        "refused": refused,
        "recorded": int(waits.size),
        "p50_seconds": round(float(np.percentile(waits, 50)), 3) if waits.size else None,
        "p99_seconds": round(float(np.percentile(waits, 99)), 3) if waits.size else None,
        "max_seconds": round(float(waits.max()), 3) if waits.size else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--no-journey",
        action="store_true",
        help="Publish no journey: the server's cost of collecting alone, to compare.",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=args.json)
    result = run(args.rate, args.seconds, args.connections, console, not args.no_journey)
    if args.json:
        print(orjson.dumps(result).decode())
        return
    p99 = result["p99_seconds"]
    mark = "ok" if p99 is not None and p99 < TARGET_P99 else "above"
    console.print(
        f"{result['sent']:,} events at {result['achieved_rate']:,}/s "
        f"({result['refused']} refused), {result['recorded']:,} sends recorded: "
        f"p50 {result['p50_seconds']} s, [bold]p99 {p99} s[/] (target < {TARGET_P99} s: {mark}), "
        f"max {result['max_seconds']} s"
    )


if __name__ == "__main__":
    main()
