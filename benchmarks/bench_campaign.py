"""Planning a campaign for ``--people`` people (default 1,000,000) in DuckDB, without sending.

People, their identifiers (an e-mail for 90 %, a phone for 30 %), marketing refusals (5 % on
e-mail, 1 % everywhere), pauses (1 %), topic exits (2 %) and messages already sent (so that
the daily cap holds back about 3 %) are generated straight in DuckDB SQL with hash-based
randomness. The campaign has e-mail then SMS, a 10 % control group, a 5 % global holdout and
a daily cap; ``--policy best`` chooses by expected value from derived metrics (appetence and
CLV for 80 %). Bounces (flagging the address) and complaints (0.3 %) suppress e-mail. Timed:
the plan (audience, consent, preferences, bounces, reachability, channel choice, caps, control
group and the keyed message ids), then recording its rows in the outbox (and the control
group's assignments), beside a baseline, a plain ``count(*)`` of the audience.

    python benchmarks/bench_campaign.py [--people N] [--policy first|best] [--json]

Target: plan and record under 60 s at 1,000,000 people.
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

from surmesure.deliver import documents, plan
from surmesure.experiments import catalog
from surmesure.store import Store, open_store

T0 = datetime(2026, 3, 2, 10)
TARGET_S = 60.0
DOCUMENT: dict[str, Any] = {
    "name": "bench",
    "audience": "everyone",
    "topic": "offers",
    "channels": {"email": {"text": "Hello"}, "sms": {"text": "Hello"}},
    "policy": {"order": ["email", "sms"]},
    "control": 0.1,
    "holdout": 0.05,
    "caps": {"per_day": 1},
}
FILL = {
    "people": """
INSERT INTO people SELECT i, NULL, TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01'
FROM range(1, {n} + 1) t(i)""",
    "identifiers": """
INSERT INTO identifiers (kind, value, person_id, node_id, source, first_seen_at)
SELECT 'customer_id', 'c' || i, i, i, 'crm', TIMESTAMP '2026-01-01' FROM range(1, {n} + 1) t(i)
UNION ALL
SELECT 'email', 'e' || i, i, i, 'crm', TIMESTAMP '2026-01-01' FROM range(1, {n} + 1) t(i)
WHERE hash(i, 'e') % 10 <> 0
UNION ALL
SELECT 'phone', 'p' || i, i, i, 'crm', TIMESTAMP '2026-01-01' FROM range(1, {n} + 1) t(i)
WHERE hash(i, 'p') % 10 < 3""",
    "consents": """
INSERT INTO consents (consent_id, person_id, node_id, purpose, channel, granted, recorded_at,
                      source)
SELECT 'k' || i, i, i, 'marketing', CASE WHEN hash(i, 'a') % 6 = 0 THEN 'any' ELSE 'email' END,
       false, TIMESTAMP '2026-02-01', 'crm'
FROM range(1, {n} + 1) t(i) WHERE hash(i, 'k') % 100 < 6""",
    "preferences": """
INSERT INTO preferences (preference_id, person_id, node_id, kind, name, value, until,
                         recorded_at, source)
SELECT 'f' || i, i, i,
       CASE WHEN hash(i, 'w') % 3 = 0 THEN 'pause' ELSE 'topic' END,
       CASE WHEN hash(i, 'w') % 3 = 0 THEN '' ELSE 'offers' END,
       CASE WHEN hash(i, 'w') % 3 = 0 THEN 'on' ELSE 'out' END,
       CASE WHEN hash(i, 'w') % 3 = 0 THEN TIMESTAMP '2026-06-01' END,
       TIMESTAMP '2026-02-01', 'centre'
FROM range(1, {n} + 1) t(i) WHERE hash(i, 'f') % 100 < 3""",
    "derived_metrics": """
INSERT INTO derived_metrics (person_id, computed_on, computed_at, as_of, expected_value,
                             appetence_email, appetence_sms, horizon_days, discount_rate,
                             window_days)
SELECT i, DATE '2026-03-01', TIMESTAMP '2026-03-01', DATE '2026-03-01', hash(i, 'v') % 500,
       (hash(i, 'ae') % 1000) / 2000.0, (hash(i, 'as') % 1000) / 2000.0, 365, 0.1, 365
FROM range(1, {n} + 1) t(i) WHERE hash(i, 'd') % 10 < 8""",
    "messages": """
INSERT INTO messages (message_id, campaign, version, person_id, channel, step, status,
                      attempts, planned_at, updated_at, sent_at)
SELECT 'm' || i, 'earlier', 1, i, 'email', 0, 'sent', 1, TIMESTAMP '2026-03-02 06:00',
       TIMESTAMP '2026-03-02 06:00', TIMESTAMP '2026-03-02 06:00'
FROM range(1, {n} + 1) t(i) WHERE hash(i, 'm') % 100 < 3""",
    "delivery_reports": """
INSERT INTO delivery_reports (report_id, message_id, channel, status, received_at)
SELECT 'r' || i, 'm' || i, 'email', CASE WHEN hash(i, 'c') % 5 = 0 THEN 'complained'
       ELSE 'bounced' END, TIMESTAMP '2026-03-02 07:00'
FROM range(1, {n} + 1) t(i) WHERE hash(i, 'm') % 100 < 3 AND hash(i, 'b') % 10 = 0""",
    # a hard bounce closes the address it came from (the person's e-mail, when they have one)
    "address_flags": """
INSERT INTO address_flags (kind, address, person_id, node_id, status, reason, source,
                           recorded_at)
SELECT 'email', 'e' || i, i, i, 'bounced', '5.1.1', 'dsn', TIMESTAMP '2026-03-02 07:00'
FROM range(1, {n} + 1) t(i) WHERE hash(i, 'm') % 100 < 3 AND hash(i, 'b') % 10 = 0
  AND hash(i, 'c') % 5 <> 0 AND hash(i, 'e') % 10 <> 0""",
}
BEST = {"policy": {"choose": "best", "order": ["email", "sms"]}, "costs": {"sms": 0.05}}


def _fill(store: Store, n: int, console: Console) -> None:
    for label, sql in FILL.items():
        start = time.perf_counter()
        with store.begin() as conn:
            store.raw_duckdb(conn).execute(sql.format(n=n))
        console.print(f"  generate {label}: {time.perf_counter() - start:.2f} s", style="dim")


def run(people: int, console: Console, best: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"duckdb:///{Path(tmp) / 'bench.duckdb'}")
        try:
            _fill(store, people, console)
            definition = documents.parse(DOCUMENT | BEST if best else DOCUMENT)
            documents.save(store, definition, T0)
            start = time.perf_counter()
            with store.connect() as conn:
                count = conn.exec_driver_sql("SELECT count(*) FROM people").scalar_one()
            baseline = time.perf_counter() - start
            start, cpu = time.perf_counter(), time.process_time()
            with store.connect() as conn:
                result = plan.plan(store, conn, definition, 1, T0)
            plan_s = time.perf_counter() - start
            start = time.perf_counter()
            assert result.experiment is not None
            catalog.save(store, result.experiment, T0)
            with store.begin() as conn:
                recorded = plan.record(store, conn, result, T0)
            record_s = time.perf_counter() - start
            cpu_s = time.process_time() - cpu
        finally:
            store.dispose()
    total = plan_s + record_s
    return {
        "people": people,
        "policy": "best" if best else "first",
        "audience": int(count),
        "baseline_count_s": round(baseline, 3),
        "plan_s": round(plan_s, 2),
        "record_s": round(record_s, 2),
        "total_s": round(total, 2),
        "cpu_s": round(cpu_s, 2),
        "rows": recorded,
        "people_per_s": round(people / total),
        "plan": result.counts,
        "target_s": TARGET_S,
        "met": total < TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--policy", choices=("first", "best"), default="first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)
    out = run(args.people, console, best=args.policy == "best")
    if args.json:
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    console.print(
        f"planned {out['people']:,} people in {out['plan_s']} s, recorded {out['rows']:,} "
        f"rows in {out['record_s']} s: {out['total_s']} s in all "
        f"({out['people_per_s']:,} people/s; target < {TARGET_S:.0f} s: "
        f"{'met' if out['met'] else 'NOT met'})"
    )
    for key, n in out["plan"].items():
        console.print(f"  {key}: {n:,}")


if __name__ == "__main__":
    main()
