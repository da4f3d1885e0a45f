"""Assignment throughput and latency, and experiment results over millions of people.

    python benchmarks/bench_learn.py [--people 10000000]

Prints: batch assignment rate (target >= 1,000,000 ids/s) against a one-at-a-time Python loop
in the same run; single-person latency (target < 5 µs); GrowthBook's Python SDK as a peer when
it is importable; and the time to compute sufficient statistics in DuckDB over the generated,
assigned people and analyze them (target < 1 s).
"""

from __future__ import annotations

import argparse
import time
import timeit

import duckdb
import numpy as np
import pyarrow as pa

from surmesure.learn import Experiment, Moments, analyze, bucket


def batch_assignment(people: int) -> float:
    exp = Experiment("bench", (0.5, 0.5))
    ids = np.arange(people, dtype=np.int64)
    clock = time.perf_counter()
    exp.assign_many(ids)
    seconds = time.perf_counter() - clock
    loop_n = 200_000
    clock = time.perf_counter()
    for i in range(loop_n):
        exp.assign(i)
    loop_rate = loop_n / (time.perf_counter() - clock)
    rate = people / seconds
    print(f"batch assignment: {rate:,.0f} ids/s ({people:,} ids in {seconds:.3f} s)")
    print(f"  one-at-a-time loop: {loop_rate:,.0f} ids/s; batch is {rate / loop_rate:.1f}x faster")
    return rate


def single_latency() -> float:
    exp = Experiment("bench", (0.5, 0.5))
    number = 200_000
    best = min(timeit.repeat(lambda: exp.assign(123_456_789), number=number, repeat=5)) / number
    text = min(timeit.repeat(lambda: exp.assign("user-123456789"), number=number, repeat=5))
    raw = min(timeit.repeat(lambda: bucket("bench", 123_456_789), number=number, repeat=5))
    print(
        f"single person: {best * 1e6:.2f} µs (integer id), {text / number * 1e6:.2f} µs (text id)"
    )
    print(f"  bucket alone: {raw / number * 1e6:.2f} µs")
    return best


def growthbook_peer() -> None:
    try:
        from growthbook import GrowthBook  # type: ignore[import-not-found]
    except ImportError:
        print("growthbook SDK: absent (pip install growthbook to compare)")
        return
    gb = GrowthBook(attributes={"id": "user-123456789"})
    number = 20_000
    try:
        from growthbook import Experiment as GbExperiment

        exp = GbExperiment(key="bench", variations=[0, 1])
        seconds = min(timeit.repeat(lambda: gb.run(exp), number=number, repeat=3)) / number
        print(f"growthbook SDK single person: {seconds * 1e6:.2f} µs")
    except Exception as exc:  # the SDK's API differs across versions
        print(f"growthbook SDK present but not measured: {exc}")


def duckdb_results(people: int) -> float:
    rng = np.random.default_rng(1)
    ids = np.arange(people, dtype=np.int64)
    variant = Experiment("bench-results", (0.5, 0.5)).assign_many(ids)
    converted = (rng.random(people) < 0.10 + 0.005 * variant).astype(np.int8)
    revenue = converted * rng.exponential(40.0, people)
    table = pa.table({"variant": variant, "converted": converted, "revenue": revenue})
    con = duckdb.connect()
    con.register("people", table)
    clock = time.perf_counter()
    rows = con.execute(
        "SELECT variant, count(*), sum(converted), sum(revenue), sum(revenue * revenue) "
        "FROM people GROUP BY variant ORDER BY variant"
    ).fetchall()
    query = time.perf_counter() - clock
    rates = {str(r[0]): Moments.binomial(int(r[1]), float(r[2])) for r in rows}
    money = {str(r[0]): Moments(int(r[1]), float(r[3]), float(r[4])) for r in rows}
    conv = analyze(rates, "0")
    rev = analyze(money, "0")
    total = time.perf_counter() - clock
    lift = conv.variants[1].comparison
    assert lift is not None
    print(
        f"results over {people:,} people: {total:.3f} s total "
        f"(DuckDB sufficient statistics {query:.3f} s, statistics {total - query:.4f} s)"
    )
    print(
        f"  conversion lift {lift.absolute.estimate:+.4f} (p = {lift.absolute.p_value:.2g}), "
        f"SRM p = {conv.srm.p_value:.3f}, revenue p = "
        f"{rev.variants[1].comparison.absolute.p_value if rev.variants[1].comparison else 'n/a'}"
    )
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=10_000_000)
    args = parser.parse_args()
    rate = batch_assignment(args.people)
    latency = single_latency()
    growthbook_peer()
    total = duckdb_results(args.people)
    print(
        "targets: batch >= 1,000,000/s "
        f"{'met' if rate >= 1e6 else 'MISSED'}; single < 5 µs "
        f"{'met' if latency < 5e-6 else 'MISSED'}; results < 1 s {'met' if total < 1 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
