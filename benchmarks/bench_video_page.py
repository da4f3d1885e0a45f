"""The video page's hot paths in DuckDB: a film's events kept, and a campaign's video figures.

1. ``--events`` events (default 2,000) kept through :func:`surmesure.deliver.video_pages.
   record_event` (token read, film looked up, one idempotent insert), beside the baseline of
   as many tracked clicks recorded by :func:`surmesure.deliver.tracking.record`, the route of
   every e-mail click, in the same run.
2. The video figures of a campaign of ``--people`` people (default 1,000,000; activity rows
   generated in SQL: 60 % opened their page, 45 % played, quarters, 25 % completed, 5 %
   clicked) by :func:`surmesure.deliver.video_results.measure`, beside a baseline ``count(*)``
   of the same rows.

Wall time and CPU time (this process and its children) are printed, and the ratios to the
baselines; under a shared machine's load, read the ratios.

    python benchmarks/bench_video_page.py [--events N] [--people N] [--json]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from rich.console import Console

from cputime import timed
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.deliver import tracking, video, video_pages, video_results
from surmesure.store import Store, open_store, schema

ACTIVITY = """
INSERT INTO channel_activity (activity_id, person_id, node_id, channel, kind, campaign,
                              occurred_at, source)
SELECT k || '-' || i, i, i, 'video', k, 'bench', TIMESTAMP '2026-03-02 12:00', 'video_page'
FROM range(1, {n} + 1) t(i), (VALUES ('opened', 60), ('played', 45), ('quarter_25', 40),
  ('quarter_50', 35), ('quarter_75', 30), ('completed', 25), ('clicked', 5)) AS s(k, share)
WHERE hash(i) % 100 < share"""


def _people(store: Store, n: int, at: datetime) -> None:
    rows = [{"person_id": i, "created_at": at, "updated_at": at} for i in range(1, n + 1)]
    with store.begin() as conn:
        conn.execute(schema.people.insert(), rows)
        conn.execute(
            schema.video_films.insert(),
            [
                {"film_id": video.film_id("bench", i), "person_id": i, "node_id": i,
                 "campaign": "bench", "content_hash": "0" * 64, "neutral": False,
                 "duration_s": 20.0, "rendered_at": at}
                for i in range(1, n + 1)
            ],
        )  # fmt: skip


def events(store: Store, n: int) -> dict[str, Any]:
    settings = get_settings()
    now = utcnow()
    _people(store, n, now)
    tokens = [
        video.video_link("bench", i, now, settings).rsplit("/", 1)[1] for i in range(1, n + 1)
    ]
    clicks = [
        {"p": i, "c": "bench", "u": "https://shop.example.com/", "t": 0} for i in range(1, n + 1)
    ]

    def keep() -> None:
        for token in tokens:
            video_pages.record_event(store, token, "play", now=now, settings=settings)

    def click() -> None:
        for payload in clicks:
            tracking.record(store, payload, "clicked", now)

    _, base_wall, base_cpu = timed(click)
    _, wall, cpu = timed(keep)
    return {
        "events": n,
        "events_per_s": n / wall,
        "events_cpu_s": cpu,
        "clicks_per_s": n / base_wall,
        "clicks_cpu_s": base_cpu,
        "cpu_ratio_to_clicks": cpu / base_cpu,
    }


def figures(store: Store, n: int) -> dict[str, Any]:
    with store.begin() as conn:
        conn.execute(sa.text(ACTIVITY.format(n=n)))

    def baseline() -> int:
        with store.connect() as conn:
            query = sa.text("SELECT count(*) FROM channel_activity WHERE campaign = 'bench'")
            return int(conn.execute(query).scalar_one())

    def measure() -> dict[str, Any]:
        with store.connect() as conn:
            return video_results.measure(conn, "bench")

    rows, base_wall, base_cpu = timed(baseline)
    out, wall, cpu = timed(measure)
    return {
        "people": n,
        "activity_rows": rows,
        "figures_s": wall,
        "figures_cpu_s": cpu,
        "count_s": base_wall,
        "count_cpu_s": base_cpu,
        "cpu_ratio_to_count": cpu / max(base_cpu, 1e-9),
        "completion_rate": out["completion_rate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"duckdb:///{Path(folder) / 'bench.duckdb'}")
        try:
            out = {"events": events(store, args.events)}
        finally:
            store.dispose()
        store = open_store(f"duckdb:///{Path(folder) / 'figures.duckdb'}")
        try:
            out["figures"] = figures(store, args.people)
        finally:
            store.dispose()
    if args.json:
        print(orjson.dumps(out).decode())
        return
    console = Console()
    e, f = out["events"], out["figures"]
    console.print(
        f"events kept: {e['events_per_s']:,.0f}/s (CPU {e['events_cpu_s']:.2f} s), tracked "
        f"clicks: {e['clicks_per_s']:,.0f}/s (CPU {e['clicks_cpu_s']:.2f} s): CPU ratio "
        f"{e['cpu_ratio_to_clicks']:.2f}"
    )
    console.print(
        f"video figures of {f['people']:,} people ({f['activity_rows']:,} rows): "
        f"{f['figures_s']:.2f} s (CPU {f['figures_cpu_s']:.2f} s), count(*) {f['count_s']:.2f} s "
        f"(CPU {f['count_cpu_s']:.2f} s): CPU ratio {f['cpu_ratio_to_count']:.1f}"
    )


if __name__ == "__main__":
    main()
