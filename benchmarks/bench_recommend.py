"""Recommendations on Online Retail II (DuckDB): quality out of sample, and speed.

    .venv/bin/python benchmarks/bench_recommend.py [--db FILE] [--people 500]

Quality: fit on all orders before 2010-09-01, score against the products each customer buys for
the first time from then on (:mod:`surmesure.decide.recommend.evaluate`), hit@10 and
recall@10 for ours, for the popularity baseline (most-bought products the customer has not
bought) and for implicit's ALS as a peer, in the same run, with ratios to the baseline.
Speed: one-person latency (p50, p99) with the model cached, and the ``--all`` rate in people
per second, against a plain query of one person's orders as the floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import sqlalchemy as sa
from scipy.sparse import csr_matrix

from surmesure.collect.importer import import_file
from surmesure.decide.recommend import evaluate, model, service
from surmesure.decide.recommend.guardrails import Policy
from surmesure.store import Store, open_store

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "online_retail_II"
CUTOFF = datetime(2010, 9, 1)
K = 10


def als_top(store: Store, holdout: evaluate.Holdout, k: int) -> dict[int, list[str]]:
    """implicit's ALS on the person x product purchase counts before the cutoff."""
    from implicit.als import AlternatingLeastSquares

    with store.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT o.person_id, l.product_code, count(DISTINCT o.order_id) "
                "FROM orders o JOIN order_lines l ON l.order_id = o.order_id "
                "WHERE NOT o.is_return AND NOT l.is_fee AND l.quantity > 0 "
                "AND o.person_id IS NOT NULL AND o.ordered_at < :cutoff GROUP BY 1, 2"
            ),
            {"cutoff": holdout.cutoff},
        ).fetchall()
    people = sorted({int(r[0]) for r in rows})
    items = sorted({str(r[1]) for r in rows})
    pi = {p: i for i, p in enumerate(people)}
    ii = {c: i for i, c in enumerate(items)}
    matrix = csr_matrix(
        (
            np.array([float(r[2]) for r in rows], dtype=np.float32),
            ([pi[int(r[0])] for r in rows], [ii[str(r[1])] for r in rows]),
        ),
        shape=(len(people), len(items)),
    )
    als = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05, random_state=7)
    als.fit(matrix, show_progress=False)
    wanted = [p for p in holdout.targets if p in pi]
    ids, _ = als.recommend(
        np.array([pi[p] for p in wanted]),
        matrix[[pi[p] for p in wanted]],
        N=k,
        filter_already_liked_items=True,
    )
    return {p: [items[j] for j in row] for p, row in zip(wanted, ids, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, help="DuckDB file to keep (imported once)")
    parser.add_argument("--people", type=int, default=500, help="people timed one by one")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "online_retail.duckdb"
    fresh = not db.exists()
    store = open_store(f"duckdb:///{db}")
    if fresh:
        started = time.perf_counter()
        import_file(
            store, "orders", DATA / "online_retail_II_2009_2010.csv.gz", preset="online-retail"
        )
        print(f"import: {time.perf_counter() - started:.1f} s")

    with store.connect() as conn:
        holdout = evaluate.holdout(conn, CUTOFF)
        baseline = evaluate.popularity_baseline(conn, holdout, K)
    started = time.perf_counter()
    with store.connect() as conn:
        model.get_model(store, conn, CUTOFF)
    print(
        f"model (rules, rankings) before {CUTOFF:%Y-%m-%d}: {time.perf_counter() - started:.1f} s"
    )

    ever = Policy(bought_window_days=None)
    started = time.perf_counter()
    ours: dict[int, list[str]] = {}
    total = 0
    for pid, _, recs in service.recommend_all(store, k=K, as_of=CUTOFF, policy=ever):
        total += 1
        if pid in holdout.targets:
            ours[pid] = [r.product_code for r in recs]
    all_seconds = time.perf_counter() - started
    started = time.perf_counter()
    peer = als_top(store, holdout, K)
    als_seconds = time.perf_counter() - started

    pop = evaluate.quality(holdout, baseline, K)
    print(f"\nquality on {pop.people:,} customers (first purchases after the cutoff)")
    print(f"{'method':<12}{'hit@10':>9}{'recall@10':>11}{'hit x':>8}{'recall x':>10}")
    for name, top in (("popularity", baseline), ("ours", ours), ("implicit ALS", peer)):
        q = evaluate.quality(holdout, top, K)
        print(
            f"{name:<12}{q.hit:>9.4f}{q.recall:>11.4f}"
            f"{q.hit / pop.hit:>8.2f}{q.recall / pop.recall:>10.2f}"
        )
    print(f"(implicit ALS fit and scoring: {als_seconds:.1f} s)")

    ids = sorted(holdout.targets)[: args.people]
    latencies = []
    floor = []
    with store.connect() as conn:
        for pid in ids:
            t = time.perf_counter()
            service.recommend(store, pid, k=K, as_of=CUTOFF, conn=conn)
            latencies.append(time.perf_counter() - t)
            t = time.perf_counter()
            conn.execute(
                sa.text("SELECT order_id FROM orders WHERE person_id = :p"), {"p": pid}
            ).fetchall()
            floor.append(time.perf_counter() - t)
    ms = sorted(x * 1000 for x in latencies)
    p50, p99 = statistics.median(ms), ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    base_ms = statistics.median(floor) * 1000
    print(f"\none person ({len(ids)} people, model cached): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(f"  floor (one query of the person's orders): p50 {base_ms:.2f} ms, x{p50 / base_ms:.1f}")
    print(f"--all: {total:,} people in {all_seconds:.1f} s, {total / all_seconds:,.0f} people/s")
    store.dispose()


if __name__ == "__main__":
    main()
