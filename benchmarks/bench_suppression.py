"""What the suppression list costs collection: ``write_events`` in this process, with the check
and with it switched off, alternating group by group on the same store, on DuckDB and on
PostgreSQL.

Each group is one commit of ``--group`` events of the ``bench_collect`` mix (page, track and
identify calls of 5,000 devices); the suppression list holds ``--suppressed`` erased
identifiers (none of them in the traffic, the usual case: the check costs its full price and
refuses nothing). The figure is events per second through ``write_events`` either way, and the
check's own time per group.

    python benchmarks/bench_suppression.py [--events 100000] [--group 1000] [--suppressed 10000]
        [--postgres URL|none] [--json]
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime
from typing import Any

import orjson

from bench_collect import DEFAULT_PG, make_bodies, on_both_stores, print_results


def run(url: str, events: int, group: int, suppressed: int) -> dict[str, Any]:
    from surmesure.collect import events as collect_events
    from surmesure.collect.events import write_events
    from surmesure.collect.importer import utcnow
    from surmesure.collect.segment import validate_messages
    from surmesure.config import get_settings
    from surmesure.protect import suppression
    from surmesure.store import open_store

    store = open_store(url)
    key = get_settings().suppression_key
    with store.begin() as conn:
        suppression.suppress(
            store,
            conn,
            [("email", f"gone{i}@erased.example.com") for i in range(suppressed)],
            key=key,
            now=datetime(2026, 1, 1),
            reason="benchmark",
        )
    messages = [
        m for body in make_bodies(events, uuid.uuid4().hex[:8]) for m in orjson.loads(body)["batch"]
    ]
    accepted, _ = validate_messages(messages)
    groups = [accepted[i : i + group] for i in range(0, len(accepted), group)]
    real = suppression.screen
    seconds = {"with": 0.0, "without": 0.0, "check": 0.0}

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            seconds["check"] += time.perf_counter() - start

    def off(store: Any, conn: Any, items: Any, identifiers_of: Any, *, key: str) -> Any:
        return list(items), []

    try:
        for n, batch in enumerate(groups):
            mode = "with" if n % 2 == 0 else "without"
            collect_events.suppression.screen = timed if mode == "with" else off  # type: ignore[assignment]
            start = time.perf_counter()
            with store.begin() as conn:
                write_events(store, conn, batch, source="web", received_at=utcnow())
            seconds[mode] += time.perf_counter() - start
    finally:
        collect_events.suppression.screen = real  # type: ignore[assignment]
        store.dispose()
    half = {
        m: sum(len(b) for k, b in enumerate(groups) if k % 2 == (m == "without"))
        for m in ("with", "without")
    }
    return {
        "events": len(accepted),
        "group": group,
        "suppressed": suppressed,
        "with_check_per_s": round(half["with"] / seconds["with"]),
        "without_check_per_s": round(half["without"] / seconds["without"]),
        "check_ms_per_group": round(1000 * seconds["check"] / ((len(groups) + 1) // 2), 3),
        "check_share": round(seconds["check"] / seconds["with"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--group", type=int, default=1_000)
    parser.add_argument("--suppressed", type=int, default=10_000)
    parser.add_argument("--postgres", default=DEFAULT_PG, help="admin URL; 'none' to skip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = on_both_stores(
        lambda url: run(url, args.events, args.group, args.suppressed), args.postgres
    )
    print_results(results, "collection with the suppression check", args.json)


if __name__ == "__main__":
    main()
