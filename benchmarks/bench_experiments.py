"""``experiment results`` on ``--people`` assigned people (default 10,000,000) in DuckDB.

People, page/track events (about one per person), orders (about 0.4 per person, 10 % returns)
and unsubscribes (3 %) are generated straight in DuckDB SQL with hash-based randomness, over
30 days around the assignment. The experiment has three variants, a 5 % global holdout, a
primary metric and three guardrails, with CUPED; assignments are recorded by the real
``assign`` (timed too). Then ``results`` (the sufficient statistics and the engine for four
metrics) is timed, best of ``--repeat`` (with the CPU time of the process, which shows when
other work shares the cores), beside a baseline, a plain ``count(*)`` of the experiment's
assignments, and beside one run of the statement joining outcomes to assignments (what
PostgreSQL runs, and DuckDB past a few waves of assignment). ``--db FILE`` keeps the store
between runs (generated and assigned when the file does not exist yet).

    python benchmarks/bench_experiments.py [--people N] [--repeat 3] [--db FILE] [--json]

Target: ``results`` under 1 s at 10,000,000 people.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from surmesure.experiments import assign, parse, results, save
from surmesure.experiments.results import joined_sql
from surmesure.store import Store, open_store

T0 = datetime(2026, 3, 1)
TARGET_S = 1.0
DEFINITION = {
    "name": "bench",
    "variants": [
        {"name": "control", "weight": 0.33},
        {"name": "offer", "weight": 0.33},
        {"name": "offer_plus", "weight": 0.33},
    ],
    "control": "control",
    "holdout": 0.05,
    "primary": "conversion",
    "guardrails": ["visit", "revenue", "unsubscribe"],
    "attribution_days": 14,
    "cuped": True,
}

# {n}: people. Times are T0 -15 days .. +15 days, to the second.
PEOPLE_SQL = """
INSERT INTO people SELECT i, NULL, TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01'
FROM range(1, {n} + 1) t(i)
"""
EVENTS_SQL = """
INSERT INTO events (message_id, type, event, person_id, occurred_at, received_at, source)
SELECT 'm' || i, CASE WHEN hash(i, 't') % 3 = 0 THEN 'page' ELSE 'track' END, 'Viewed',
       1 + hash(i, 'p') % {n},
       TIMESTAMP '2026-02-14' + to_seconds(CAST(hash(i, 's') % 2592000 AS BIGINT)),
       TIMESTAMP '2026-02-14', 'web'
FROM range({n}) t(i)
"""
ORDERS_SQL = """
INSERT INTO orders (order_id, person_id, ordered_at, is_return, total_amount, source)
SELECT 'o' || i, 1 + hash(i, 'p') % {n},
       TIMESTAMP '2026-02-14' + to_seconds(CAST(hash(i, 's') % 2592000 AS BIGINT)),
       hash(i, 'r') % 10 = 0, round(5 + (hash(i, 'a') % 20000) / 100.0, 2), 'shop'
FROM range({n} * 2 // 5) t(i)
"""
UNSUBSCRIBES_SQL = """
INSERT INTO channel_activity (activity_id, person_id, channel, kind, occurred_at, source)
SELECT 'c' || i, 1 + hash(i, 'p') % {n}, 'email', 'unsubscribed',
       TIMESTAMP '2026-02-14' + to_seconds(CAST(hash(i, 's') % 2592000 AS BIGINT)), 'email'
FROM range({n} * 3 // 100) t(i)
"""


def _timed(label: str, console: Console, work: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = work()
    elapsed = time.perf_counter() - start
    console.print(f"  {label}: {elapsed:.2f} s", style="dim")
    return elapsed, value


def _fill(store: Store, n: int, console: Console) -> None:
    for label, sql in (
        ("people", PEOPLE_SQL),
        ("events", EVENTS_SQL),
        ("orders", ORDERS_SQL),
        ("unsubscribes", UNSUBSCRIBES_SQL),
    ):
        with store.begin() as conn:
            raw = store.raw_duckdb(conn)
            _timed(f"generate {label}", console, lambda s=sql, r=raw: r.execute(s.format(n=n)))


def _best(repeat: int, work: Any) -> tuple[float, float, Any]:
    """Best wall time, best CPU time of the process (all threads) and the last value."""
    best, best_cpu, value = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        value = work()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu, value


def run(people: int, repeat: int, console: Console, db: Path | None = None) -> dict[str, Any]:
    definition = parse(DEFINITION)
    with tempfile.TemporaryDirectory() as tmp:
        path = db or Path(tmp) / "bench.duckdb"
        fresh = not path.exists()
        store = open_store(f"duckdb:///{path}")
        try:
            assign_s, holdout = None, None
            if fresh:
                _fill(store, people, console)
                save(store, definition)
                assign_s, report = _timed(
                    "assign", console, lambda: assign(store, definition.name, now=T0)
                )
                holdout = report.holdout

            def baseline() -> int:
                with store.connect() as conn:
                    return int(
                        conn.execute(
                            sa.text(
                                "SELECT count(*) FROM experiment_assignments WHERE experiment = :e"
                            ),
                            {"e": definition.name},
                        ).scalar_one()
                    )

            def joined() -> int:
                sql = joined_sql(definition.metrics, definition.attribution_days, definition.cuped)
                with store.connect() as conn:
                    return len(conn.execute(sa.text(sql), {"experiment": definition.name}).all())

            baseline_s, _, assigned = _best(repeat, baseline)
            results_s, results_cpu_s, res = _best(repeat, lambda: results(store, definition.name))
            joined_s, _, _ = _best(1, joined)
        finally:
            store.dispose()
    primary = res.metrics[0].result
    return {
        "people": people,
        "assigned": assigned,
        "holdout": holdout,
        "assign_s": None if assign_s is None else round(assign_s, 3),
        "baseline_count_s": round(baseline_s, 4),
        "results_s": round(results_s, 3),
        "results_cpu_s": round(results_cpu_s, 3),
        "joined_statement_s": round(joined_s, 3),
        "ratio": round(results_s / baseline_s, 1),
        "target_s": TARGET_S,
        "within_target": results_s < TARGET_S,
        "control_conversion": primary.variants[0].mean,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="DuckDB file kept between runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)
    out = run(args.people, args.repeat, console, args.db)
    if args.json:
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"experiment results, {out['people']:,} people (DuckDB)")
    for col in ("measure", "seconds", "note"):
        table.add_column(col)
    assign_s = "kept" if out["assign_s"] is None else f"{out['assign_s']:.2f}"
    table.add_row("assign (hash + record)", assign_s, f"{out['assigned']:,}")
    table.add_row("baseline: count(*)", f"{out['baseline_count_s']:.4f}", "")
    verdict = "ok" if out["within_target"] else "OVER TARGET"
    table.add_row(
        "results (query + engine)",
        f"{out['results_s']:.3f}",
        f"cpu {out['results_cpu_s']:.2f} s; x{out['ratio']} baseline; "
        f"target < {TARGET_S} s: {verdict}",
    )
    table.add_row("outcomes joined to assignments", f"{out['joined_statement_s']:.3f}", "1 run")
    Console().print(table)


if __name__ == "__main__":
    main()
