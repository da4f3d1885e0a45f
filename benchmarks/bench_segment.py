"""Segment speed on DuckDB: size of a 5-condition segment, refresh of 50 segments, and
in-memory evaluation of 50 segments for one person, against a plain count(*) baseline.

    .venv/bin/python benchmarks/bench_segment.py --people 1000000

People, traits (city, home store), derived metrics, events, orders, products and stores are
generated in DuckDB SQL (range() and hash-based randomness), so generation is quick and the
run is the same every time (``--db FILE`` keeps the generated file and reuses it).

The 5-condition size is measured with the plain plan (every ranking over everyone, every count
grouped) and with the fast plan (a chain of steps, rankings restricted to the persons still in,
semi-joins), with the size of each plan (operators in DuckDB's EXPLAIN, characters of SQL).
``--postgres URL`` measures the same size on PostgreSQL too, printed beside DuckDB's (the world
generated there with generate_series when the database is empty: ``segment_world_pg.py``);
``--spark`` times the conformance table on a local Spark session (``bench_segment_engines.py``,
which also compares the SQLAlchemy and Ibis compilers on a store such as the demo world)::

    createdb h_bench && .venv/bin/python benchmarks/bench_segment.py --people 10000000 \
        --size-only --postgres postgresql+psycopg://postgres@127.0.0.1/h_bench --spark

Measured alone on the 2-core machine, ``--people 10000000 --size-only --postgres ... --spark``
(23 M traits, 40 M events, 10 M orders): DuckDB 0.877 s (first query 1.745 s; the plain plan
5.7 s), PostgreSQL 30.7 s (first query 34.6 s; 35x DuckDB's; generating its world took 22 min),
the conformance table on Spark 91 cases, 0 wrong, in 30.4 s.

Targets: the 5-condition size over 10,000,000 people under 2 s;
a refresh of 50 segments over 1,000,000 people under 30 s; 50 evaluations in memory under 1 ms.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench_segment_engines import conformance_on_spark
from segment_world_pg import generate_postgres, rows, run_parameters
from surmesure.config import get_settings
from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment import membership, repository
from surmesure.segment.evaluate import Evaluator
from surmesure.segment.snapshot import load_snapshot, store_points, stores_named
from surmesure.segment.sql import members_query
from surmesure.store import open_store
from surmesure.store.engine import Store

NOW = datetime(2026, 3, 31, 12, 0)
CITIES = ["Lyon", "Paris", "Marseille", "Lille", "Nantes", "Bordeaux", "Toulouse", "Nice"]
SEGMENTS = ["Champions", "Loyal", "Potential", "At Risk", "Hibernating", "Lost"]
CATEGORIES = ["shoes", "bags", "hats", "coats", "shirts", "belts", "socks", "scarves"]


def rand(salt: str) -> str:
    """A uniform number in [0, 1) from the row number ``i`` and a salt."""
    return f"(hash(i, '{salt}') % 1000003) / 1000003.0"


def generate(store: Store, people: int) -> None:
    run_columns, run_values = run_parameters()
    cities = "[" + ", ".join(f"'{c}'" for c in CITIES) + "]"
    rfm = "[" + ", ".join(f"'{c}'" for c in SEGMENTS) + "]"
    categories = "[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    statements = [
        "INSERT INTO people SELECT i, NULL, TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-01' "
        f"FROM range(1, {people} + 1) t(i)",
        "INSERT INTO stores SELECT 's' || i, 'store ' || i, NULL, NULL, 'FR', "
        f"43.0 + 6.0 * {rand('lat')}, -1.0 + 8.0 * {rand('lon')}, TIMESTAMP '2026-01-01' "
        "FROM range(0, 200) t(i)",
        f"INSERT INTO products SELECT 'p' || i, NULL, ({categories})[1 + i % 8], 20.0, 'EUR', "
        "TIMESTAMP '2026-01-01' FROM range(0, 500) t(i)",
        "INSERT INTO traits SELECT 'k' || i, 'city', i, i, "
        f"to_json(({cities})[1 + CAST(floor(8 * {rand('city')}) AS INTEGER)]), 'crm', "
        f"TIMESTAMP '2024-04-01' + to_days(CAST(floor(720 * {rand('cat')}) AS INTEGER)), "
        f"0.3 + 0.7 * {rand('crel')}, NULL FROM range(1, {people} + 1) t(i)",
        "INSERT INTO traits SELECT 'w' || i, 'city', i, i, "
        f"to_json(({cities})[1 + CAST(floor(8 * {rand('city2')}) AS INTEGER)]), 'web', "
        f"TIMESTAMP '2025-04-01' + to_days(CAST(floor(360 * {rand('wat')}) AS INTEGER)), 0.5, NULL "
        f"FROM range(1, {people} + 1) t(i) WHERE {rand('second')} < 0.3",
        "INSERT INTO traits SELECT 'k' || i, 'home_store_id', i, i, "
        f"to_json('s' || CAST(floor(200 * {rand('home')}) AS INTEGER)), 'crm', "
        f"TIMESTAMP '2025-01-01', 0.9, NULL FROM range(1, {people} + 1) t(i)",
        "INSERT INTO derived_metrics (person_id, computed_on, computed_at, as_of, recency_days, "
        "frequency, monetary, r_score, f_score, m_score, rfm_segment, p_alive, expected_value, "
        f"{run_columns}) SELECT i, DATE '2026-03-30', TIMESTAMP '2026-03-30 02:00', "
        f"DATE '2026-03-30', CAST(floor(365 * {rand('rec')}) AS INTEGER), "
        f"1 + CAST(floor(12 * {rand('freq')}) AS INTEGER), 1000.0 * {rand('mon')}, "
        f"1 + CAST(floor(5 * {rand('r')}) AS INTEGER), "
        f"1 + CAST(floor(5 * {rand('f')}) AS INTEGER), "
        f"1 + CAST(floor(5 * {rand('m')}) AS INTEGER), "
        f"({rfm})[1 + CAST(floor(6 * {rand('seg')}) AS INTEGER)], {rand('alive')}, "
        f"500.0 * {rand('ev')}, {run_values} FROM range(1, {people} + 1) t(i)",
        "INSERT INTO events (message_id, type, event, person_id, node_id, occurred_at, "
        "received_at, properties, source) SELECT 'e' || i, 'track', "
        f"CASE WHEN {rand('kind')} < 0.7 THEN 'Product Viewed' ELSE 'Added to Cart' END, "
        f"1 + CAST(floor({people} * {rand('who')}) AS BIGINT), NULL, "
        f"TIMESTAMP '2025-12-01' + to_seconds(CAST(floor(10368000 * {rand('when')}) AS BIGINT)), "
        f"TIMESTAMP '2026-01-01', NULL, 'web' FROM range(0, {4 * people}) t(i)",
        "INSERT INTO orders (order_id, person_id, node_id, ordered_at, is_return, total_amount, "
        f"source) SELECT 'o' || i, 1 + CAST(floor({people} * {rand('buyer')}) AS BIGINT), NULL, "
        f"TIMESTAMP '2025-10-01' + to_seconds(CAST(floor(15552000 * {rand('paid')}) AS BIGINT)), "
        f"{rand('ret')} < 0.05, 10.0 + 190.0 * {rand('amount')}, 'pos' "
        f"FROM range(0, {people}) t(i)",
        "INSERT INTO order_lines SELECT 'o' || i, 0, "
        f"'p' || CAST(floor(500 * {rand('prod')}) AS INTEGER), NULL, 1, 0, "
        f"10.0 + 190.0 * {rand('amount')}, false FROM range(0, {people}) t(i)",
    ]
    with store.begin() as conn:
        raw = store.raw_duckdb(conn)
        for statement in statements:
            raw.execute(statement)


def five_conditions() -> SegmentDefinition:
    return SegmentDefinition.model_validate(
        {
            "name": "five",
            "where": {
                "all": [
                    {"trait": {"name": "city", "op": "eq", "value": "Lyon"}},
                    {
                        "metric": {
                            "name": "rfm_segment",
                            "op": "in",
                            "value": ["Champions", "Loyal"],
                        }
                    },
                    {"event": {"type": "track", "name": "Product Viewed", "within_days": 30}},
                    {"purchase": {"category": "shoes", "within_days": 90}},
                    {"near": {"lat": 45.76, "lon": 4.83, "radius_km": 300}},
                ]
            },
        }
    )


def fifty() -> list[SegmentDefinition]:
    """50 varied definitions: single conditions, pairs, nested and references."""
    docs: list[dict[str, Any]] = []
    for k, city in enumerate(CITIES):
        docs.append(
            {
                "name": f"city_{k}",
                "where": {
                    "trait": {"name": "city", "op": "eq", "value": city, "min_reliability": 0.4}
                },
            }
        )
    for k, seg in enumerate(SEGMENTS):
        docs.append(
            {
                "name": f"rfm_{k}",
                "where": {"metric": {"name": "rfm_segment", "op": "eq", "value": seg}},
            }
        )
    for k, days in enumerate((1, 7, 14, 30, 60, 90)):
        docs.append(
            {
                "name": f"viewed_{k}",
                "where": {
                    "event": {"name": "Product Viewed", "within_days": days, "min_count": 1 + k % 3}
                },
            }
        )
    for k, cat in enumerate(CATEGORIES):
        docs.append(
            {"name": f"bought_{k}", "where": {"purchase": {"category": cat, "within_days": 180}}}
        )
    for k in range(6):
        docs.append(
            {"name": f"near_{k}", "where": {"near": {"store": f"s{k}", "radius_km": 50 + 25 * k}}}
        )
    for k in range(6):
        docs.append(
            {
                "name": f"combo_{k}",
                "where": {
                    "all": [
                        {"segment": f"city_{k}"},
                        {"metric": {"name": "r_score", "op": "ge", "value": 1 + k % 5}},
                        {"not": {"segment": f"viewed_{k}"}},
                    ]
                },
            }
        )
    for k in range(6):
        docs.append(
            {
                "name": f"mix_{k}",
                "where": {
                    "any": [
                        {"segment": f"bought_{k}"},
                        {
                            "all": [
                                {"segment": f"near_{k}"},
                                {"bucket": {"salt": f"b{k}", "from": 0.0, "to": 0.5}},
                            ]
                        },
                    ]
                },
            }
        )
    docs.append({"name": "five", "where": five_conditions().where.model_dump(by_alias=True)})
    docs.append(
        {"name": "alive", "where": {"metric": {"name": "p_alive", "op": "gt", "value": 0.8}}}
    )
    docs.append({"name": "dormant", "where": {"not": {"event": {"within_days": 60}}}})
    docs.append({"name": "big", "where": {"purchase": {"min_amount": 150}}})
    assert len(docs) == 50, len(docs)
    return [SegmentDefinition.model_validate(d) for d in docs]


def plan_size(store: Store, sql: str) -> int:
    """Operators in DuckDB's physical plan of ``sql``."""

    def count(node: dict[str, Any]) -> int:
        return 1 + sum(count(child) for child in node.get("children", []))

    with store.connect() as conn:
        row = store.raw_duckdb(conn).execute("EXPLAIN (FORMAT json) " + sql).fetchone()
    return sum(count(node) for node in json.loads(row[1]))


def compare_plans(store: Store, definition: SegmentDefinition, repeat: int = 3) -> None:
    """Time the plain and the fast plan of ``definition`` (best of ``repeat``)."""
    half_life = get_settings().trait_half_life_days
    seconds: dict[bool, float] = {}
    for fast in (False, True):
        query = members_query(
            definition,
            dialect="duckdb",
            now=NOW,
            half_life_days=half_life,
            catalog={},
            index_key=blind.index_key(store),
            fast=fast,
        )
        sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
        best, members = float("inf"), 0
        for _ in range(repeat):
            start = time.perf_counter()
            with store.connect() as conn:
                raw = store.raw_duckdb(conn)
                members = raw.execute(f"SELECT count(*) FROM ({sql}) AS q").fetchone()[0]
            best = min(best, time.perf_counter() - start)
        seconds[fast] = best
        label = "fast plan (chain, restricted rankings)" if fast else "plain plan (before)"
        print(
            f"  {label:<50} {best:8.3f} s  members {members:,}; "
            f"plan {plan_size(store, sql)} operators, {len(sql):,} chars of SQL"
        )
    print(f"  speed-up fast over plain: {seconds[False] / seconds[True]:,.1f}x")


def timed(label: str, func: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    print(f"{label:<52} {seconds:8.3f} s")
    return seconds, result


def repository_reset(store: Store) -> None:
    """Forget saved segments and memberships of an earlier run on a kept database."""
    with store.begin() as conn:
        for table in ("segment_changes", "segment_members", "segment_versions", "segments"):
            store.raw_duckdb(conn).execute(f"DELETE FROM {table}")


def on_postgres(url: str, people: int, definition: SegmentDefinition, duckdb_s: float) -> None:
    """The 5-condition size on PostgreSQL, printed beside DuckDB's."""
    store = open_store(url)
    if rows(store)["people"] == 0:
        timed(f"generate {people:,} people in PostgreSQL", lambda: generate_postgres(store, people))
    counts = rows(store)
    print("PostgreSQL rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))

    def baseline() -> None:
        with store.connect() as conn:
            for table in counts:
                conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()

    base, _ = timed("PostgreSQL baseline: count(*) over the 5 tables", baseline)
    timed(
        "PostgreSQL: size of the 5-condition segment (first query)",
        lambda: membership.size(store, definition, NOW, {}),
    )
    size_s, size = timed(
        "PostgreSQL: size of the 5-condition segment",
        lambda: membership.size(store, definition, NOW, {}),
    )
    print(
        f"  members {size:,}; ratio to baseline {size_s / base:,.1f}x; "
        f"DuckDB {duckdb_s:.3f} s, PostgreSQL {size_s:.3f} s "
        f"(PostgreSQL / DuckDB {size_s / duckdb_s:,.1f}x)"
    )
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1000, help="in-memory repetitions")
    parser.add_argument("--db", type=Path, help="keep the generated database in this file")
    parser.add_argument("--size-only", action="store_true", help="skip refresh and in-memory")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also measure the size on this PostgreSQL database (generated there when empty)",
    )
    parser.add_argument(
        "--spark", action="store_true", help="also time the conformance table on local Spark"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.duckdb"
        reuse = path.exists()
        store = open_store(f"duckdb:///{path}")
        if reuse:
            repository_reset(store)
            print(f"reusing {path}")
        else:
            timed(f"generate {args.people:,} people", lambda: generate(store, args.people))
        with store.connect() as conn:
            raw = store.raw_duckdb(conn)
            counts = {
                t: raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("people", "traits", "derived_metrics", "events", "orders")
            }
        print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))

        def baseline() -> None:
            with store.connect() as conn:
                raw = store.raw_duckdb(conn)
                for table in counts:
                    raw.execute(f"SELECT count(*) FROM {table}").fetchone()

        base, _ = timed("baseline: count(*) over the 5 tables", baseline)
        definition = five_conditions()
        timed(
            "size of the 5-condition segment (first query)",
            lambda: membership.size(store, definition, NOW, {}),
        )
        size_s, size = timed(
            "size of the 5-condition segment", lambda: membership.size(store, definition, NOW, {})
        )
        print(f"  members {size:,}; ratio to baseline {size_s / base:,.1f}x")
        compare_plans(store, definition)
        if args.postgres:
            on_postgres(args.postgres, args.people, definition, size_s)
        if args.spark:
            conformance_on_spark()
        if args.size_only:
            store.dispose()
            return
        definitions = fifty()
        for d in definitions:
            repository.save(store, d, NOW)
        first, done = timed(
            "refresh 50 segments (first: everyone enters)",
            lambda: membership.refresh(store, None, NOW),
        )
        print(f"  memberships {sum(r.members for r in done):,}; ratio {first / base:,.1f}x")
        later = datetime(2026, 4, 3, 12, 0)
        again, done = timed(
            "refresh 50 segments (3 days later)", lambda: membership.refresh(store, None, later)
        )
        moved = sum(r.entered + r.exited for r in done)
        print(f"  entered+exited {moved:,}; ratio {again / base:,.1f}x")
        with store.connect() as conn:
            catalog = repository.catalog(conn)
            places = store_points(conn, stores_named(catalog.values()))
            snapshot = load_snapshot(conn, 42, NOW, get_settings().trait_half_life_days, places)
        names = sorted(catalog)
        start = time.perf_counter()
        hits = 0
        for _ in range(args.runs):
            evaluator = Evaluator(snapshot, NOW, catalog, blind.index_key(store))
            hits += sum(evaluator.segment(n) for n in names)
        per_call = (time.perf_counter() - start) / args.runs
        print(
            f"{'in memory: 50 segments for one person':<52} {per_call * 1000:8.3f} ms "
            f"({hits // args.runs} memberships; {len(snapshot.events)} events)"
        )
        store.dispose()


if __name__ == "__main__":
    main()
