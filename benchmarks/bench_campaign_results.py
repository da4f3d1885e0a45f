"""Measuring a campaign of ``--people`` people (default 1,000,000) in DuckDB: `campaign results`.

The outbox of one campaign is generated straight in DuckDB SQL with hash-based randomness: a
10 % control group, a 5 % global holdout, 5 % suppressed while planning, the rest treated,
e-mail for 80 % and SMS (2 segments) for 20 %, sent; SMS delivery reports (accepted, then
delivered for 70 %), e-mail bounces (2 %), opens (20 %) and clicks (5 %); orders for 30 % of
the people (returns 5 %), a third of them outside the 14-day window; five discovered clusters.
Timed: the results in all and per channel, then broken down by the five clusters (each with
its intervals, ROI and Benjamini-Hochberg adjustment), beside a baseline, a plain
``count(*)`` of the campaign's outbox rows.

    python benchmarks/bench_campaign_results.py [--people N] [--json]

Target: under 10 s at 1,000,000 people, with the breakdown.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from surmesure.deliver import documents, results
from surmesure.store import Store, open_store

T0 = datetime(2026, 3, 2, 10)
TARGET_S = 10.0
DOCUMENT: dict[str, Any] = {
    "name": "bench",
    "audience": "everyone",
    "channels": {"email": {"text": "Hello"}, "sms": {"text": "Hello"}},
    "policy": {"order": ["email", "sms"]},
    "control": 0.1,
    "holdout": 0.05,
    "costs": {"email": 0.001, "sms": 0.045},
}
FILL = {
    "messages": """
INSERT INTO messages (message_id, campaign, version, person_id, channel, step, status, reason,
                      attempts, units, planned_at, updated_at, sent_at)
SELECT 'm' || i, 'bench', 1, i, CASE WHEN hash(i, 'c') % 5 = 0 THEN 'sms' ELSE 'email' END, 0,
  CASE WHEN g < 5 THEN 'suppressed' WHEN g < 20 THEN 'held_out' ELSE 'sent' END,
  CASE WHEN g < 5 THEN 'opted_out_marketing' WHEN g < 15 THEN 'control'
       WHEN g < 20 THEN 'global_holdout' END,
  CASE WHEN g < 20 THEN 0 ELSE 1 END,
  CASE WHEN g < 20 THEN NULL WHEN hash(i, 'c') % 5 = 0 THEN 2 ELSE 1 END,
  TIMESTAMP '2026-03-02 10:00', TIMESTAMP '2026-03-02 10:00',
  CASE WHEN g >= 20 THEN TIMESTAMP '2026-03-02 10:05' END
FROM (SELECT i, hash(i, 'g') % 100 AS g FROM range(1, {n} + 1) t(i))""",
    "delivery_reports": """
INSERT INTO delivery_reports (report_id, message_id, channel, status, received_at)
SELECT 'a' || message_id, message_id, channel, 'accepted', TIMESTAMP '2026-03-02 10:06'
FROM messages WHERE campaign = 'bench' AND status = 'sent' AND channel = 'sms'
UNION ALL
SELECT 'd' || message_id, message_id, channel, 'delivered', TIMESTAMP '2026-03-02 10:07'
FROM messages WHERE campaign = 'bench' AND status = 'sent' AND channel = 'sms'
  AND hash(message_id) % 10 < 7
UNION ALL
SELECT 'b' || message_id, message_id, channel, 'bounced', TIMESTAMP '2026-03-02 10:07'
FROM messages WHERE campaign = 'bench' AND status = 'sent' AND channel = 'email'
  AND hash(message_id) % 50 = 0""",
    "channel_activity": """
INSERT INTO channel_activity (activity_id, person_id, node_id, channel, kind, campaign,
                              occurred_at, source)
SELECT 'o' || person_id, person_id, person_id, 'email',
  CASE WHEN hash(person_id, 'k') % 4 = 0 THEN 'clicked' ELSE 'opened' END, 'bench',
  TIMESTAMP '2026-03-02 12:00', 'tracking'
FROM messages WHERE campaign = 'bench' AND status = 'sent' AND channel = 'email'
  AND hash(person_id, 'o') % 5 = 0""",
    "orders": """
INSERT INTO orders (order_id, person_id, node_id, ordered_at, is_return, currency,
                    total_amount, source)
SELECT 'o' || i, i, i,
  TIMESTAMP '2026-03-02 10:00' + INTERVAL (hash(i, 't') % 30) DAY,
  hash(i, 'r') % 20 = 0, 'EUR', 10 + hash(i, 'v') % 200, 'shop'
FROM range(1, {n} + 1) t(i) WHERE hash(i, 'b') % 10 < 3""",
    "segment_members": """
INSERT INTO segment_members (segment, person_id, entered_at)
SELECT 'cluster_' || (1 + hash(i, 's') % 5), i, TIMESTAMP '2026-03-01'
FROM range(1, {n} + 1) t(i)""",
}


def fill(store: Store, n: int) -> None:
    documents.save(store, documents.parse(DOCUMENT), T0)
    with store.begin() as conn:
        raw = store.raw_duckdb(conn)
        for sql in FILL.values():
            raw.execute(sql.format(n=n))


def run(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"duckdb:///{Path(folder) / 'bench.duckdb'}")
        try:
            started = time.perf_counter()
            fill(store, n)
            filled = time.perf_counter() - started
            started = time.perf_counter()
            with store.connect() as conn:
                rows = store.raw_duckdb(conn).execute(
                    "SELECT count(*) FROM messages WHERE campaign = 'bench'"
                )
                rows.fetchall()
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            overall = results.measure(store, "bench")
            plain = time.perf_counter() - started
            started = time.perf_counter()
            broken = results.measure(store, "bench", ["cluster"])
            by = time.perf_counter() - started
        finally:
            store.dispose()
    first = overall["comparisons"][0]
    return {
        "people": n,
        "fill_s": round(filled, 2),
        "count_s": round(baseline, 3),
        "results_s": round(plain, 2),
        "results_by_cluster_s": round(by, 2),
        "clusters": len(broken["breakdown"]),
        "treated": first["treated"],
        "control": first["control"],
        "target_s": TARGET_S,
        "met": by < TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = run(args.people)
    if args.json:
        print(orjson.dumps(out).decode())
        return
    console = Console()
    for key, value in out.items():
        console.print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
