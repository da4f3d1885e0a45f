"""``derive`` (RFM, CLV fit, per-person outputs, storage) on a synthetic million customers.

The data are generated straight in DuckDB SQL with hash-based randomness: ``--people`` people
(default 1,000,000), each with a customer id and orders over two years drawn as BG/NBD
supposes (see ``ORDERS_SQL``; 5 % returns, 3 % anonymous, 10 % with a postage fee line), 1-5
lines per order at prices around a spend level of each person: about 6.6 orders and 20 lines
per person; three e-mails each with opens and clicks, an NPS answer for one in three. Each
measurement runs in a fresh process so its peak resident memory is its own.

Printed beside it: the same run on PostgreSQL at a smaller size (``--pg-people``, default
50,000; ``--pg-people 0`` skips it), the BG/NBD + Gamma-Gamma fit on CDNOW timed against
the ``lifetimes`` package, as a ratio; the KPIs (``kpi``) and the HTML report after the
DuckDB run, as a ratio of the derive time; and the same RFM expression on a local Spark
session against DuckDB on ``--spark-people`` people (default 20,000; 0 skips it; needs the
``spark`` extra), the Spark time as a ratio of DuckDB's.

    python benchmarks/bench_derive.py [--people N] [--pg-people N] [--spark-people N]
        [--postgres URL] [--json]

Targets: DuckDB at a million people under 30 s and 4 GB.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT.parent / "shared/datasets/cdnow/CDNOW_sample.txt"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AS_OF = date(2024, 12, 31)

# One row per order: person, order number, day (0-729 from 2023-01-01), return flag, lines.
# Customers follow the BG/NBD story: a first purchase in the first year, then purchases at a
# log-normal rate (about one every 45 days) until they drop out, which they do after each
# purchase with probability 0.6 u^2; at most 24 orders each.
ORDERS_SQL = """
WITH p AS (
    SELECT i,
           hash(i, 'start') % 365 AS start,
           exp(ln(1 / 45.0) + 0.8 * sqrt(-2 * ln(((hash(i, 'z1') % 1000000) + 0.5) / 1e6))
               * cos(2 * pi() * ((hash(i, 'z2') % 1000000) + 0.5) / 1e6)) AS rate,
           0.6 * pow(((hash(i, 'p') % 1000000) + 0.5) / 1e6, 2) AS dropout
    FROM range({people}) t(i)
), k AS (
    SELECT i, k, start,
           1 + floor(ln(((hash(i, 'life') % 1000000) + 0.5) / 1e6) / ln(1 - dropout))
               AS lifetime,
           CASE WHEN k = 0 THEN 0
                ELSE -ln(((hash(i, k, 'gap') % 1000000) + 0.5) / 1e6) / rate END AS gap
    FROM p, range(24) r(k)
), days AS (
    SELECT *, start + sum(gap) OVER (PARTITION BY i ORDER BY k) AS day FROM k
)
SELECT CASE WHEN hash(i, k, 'anon') % 33 = 0 THEN NULL ELSE i + 1 END AS person_id,
       i * 24 + k AS order_no,
       CAST(floor(day) AS INTEGER) AS day,
       k > 0 AND hash(i, k, 'ret') % 20 = 0 AS is_return,
       1 + hash(i, k, 'lines') % 5 AS lines,
       hash(i, k, 'fee') % 10 = 0 AS has_fee
FROM days
WHERE k < lifetime AND day < 730
"""
LINES_SQL = """
SELECT 'O' || order_no AS order_id, l + 1 AS line_no,
       CASE WHEN has_fee AND l = 0 THEN 'POST' ELSE 'P' || hash(order_no, l) % 5000 END
           AS product_code,
       NULL AS description,
       CAST(1 + hash(order_no, l, 'q') % 5 AS INTEGER) AS quantity,
       -- prices around a log-normal spend level of the person (order_no // 24)
       round((1 + hash(order_no, l, 'p') % 2000) / 100.0
             * exp(0.6 * sqrt(-2 * ln(((hash(order_no // 24, 'z3') % 1000000) + 0.5) / 1e6))
                   * cos(2 * pi() * ((hash(order_no // 24, 'z4') % 1000000) + 0.5) / 1e6)),
             2) AS unit_price,
       CASE WHEN is_return THEN -1 ELSE 1 END * quantity * unit_price AS amount,
       has_fee AND l = 0 AS is_fee
FROM gen_orders, range(5) r(l)
WHERE l < lines
"""
ORDER_ROWS_SQL = """
SELECT 'O' || o.order_no AS order_id, o.person_id, o.person_id AS node_id,
       NULL AS customer_ref, NULL AS store_id, 'web' AS channel, 'FR' AS country,
       TIMESTAMP '2023-01-01' + to_days(CAST(o.day AS INTEGER))
           + to_seconds(CAST(hash(o.order_no, 's') % 86400 AS BIGINT)) AS ordered_at,
       o.is_return, 'EUR' AS currency, t.total AS total_amount, 'bench' AS source
FROM gen_orders o JOIN (SELECT order_id, sum(amount) AS total FROM gen_lines GROUP BY 1) t
  ON t.order_id = 'O' || o.order_no
"""
# Per person three e-mails over the last quarter, opened with a probability of the person's,
# clicked one time in five when opened; one person in three answered an NPS survey.
ACTIVITY_SQL = """
SELECT 'A' || i || '-' || m || '-' || kind AS activity_id, i + 1 AS person_id,
       i + 1 AS node_id, 'email' AS channel, kind, 'camp' || m AS campaign, NULL AS url,
       TIMESTAMP '2024-10-01' + to_days(CAST(m * 30 AS INTEGER))
           + to_seconds(CAST(hash(i, m, kind) % 86400 AS BIGINT)) AS occurred_at,
       'bench' AS source
FROM range({people}) t(i), range(3) e(m), (VALUES ('sent'), ('opened'), ('clicked')) k(kind)
WHERE kind = 'sent'
   OR (kind = 'opened' AND hash(i, m, 'o') % 100 < hash(i, 'engaged') % 100)
   OR (kind = 'clicked' AND hash(i, m, 'o') % 100 < hash(i, 'engaged') % 100
       AND hash(i, m, 'c') % 5 = 0)
"""
ANSWERS_SQL = """
SELECT 'S' || i AS answer_id, i + 1 AS person_id, i + 1 AS node_id, 'nps' AS survey,
       'nps' AS metric, CAST(hash(i, 'nps') % 11 AS SMALLINT) AS score, NULL AS comment,
       'email' AS channel, NULL AS store_id,
       TIMESTAMP '2024-01-01' + to_days(CAST(hash(i, 'when') % 365 AS INTEGER)) AS answered_at,
       'bench' AS source
FROM range({people}) t(i)
WHERE hash(i, 'answers') % 3 = 0
"""
PEOPLE_SQL = """
SELECT i + 1 AS person_id, NULL::BIGINT AS merged_into,
       TIMESTAMP '2023-01-01' AS created_at, TIMESTAMP '2023-01-01' AS updated_at
FROM range({people}) t(i)
"""
IDENTIFIERS_SQL = """
SELECT 'customer_id' AS kind, 'C' || (i + 1) AS value, i + 1 AS person_id, i + 1 AS node_id,
       'bench' AS source, TIMESTAMP '2023-01-01' AS first_seen_at
FROM range({people}) t(i)
"""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(con: Any, people: int) -> None:
    """The generated tables (``TARGETS``) in the DuckDB connection ``con``."""
    con.execute(f"CREATE TEMP TABLE gen_orders AS {ORDERS_SQL.format(people=people)}")
    con.execute(f"CREATE TEMP TABLE gen_lines AS {LINES_SQL}")
    con.execute(f"CREATE TEMP TABLE gen_order_rows AS {ORDER_ROWS_SQL}")
    con.execute(f"CREATE TEMP TABLE gen_people AS {PEOPLE_SQL.format(people=people)}")
    con.execute(f"CREATE TEMP TABLE gen_identifiers AS {IDENTIFIERS_SQL.format(people=people)}")
    con.execute(f"CREATE TEMP TABLE gen_activity AS {ACTIVITY_SQL.format(people=people)}")
    con.execute(f"CREATE TEMP TABLE gen_answers AS {ANSWERS_SQL.format(people=people)}")


TARGETS = {
    "people": "gen_people",
    "identifiers": "gen_identifiers",
    "orders": "gen_order_rows",
    "order_lines": "gen_lines",
    "channel_activity": "gen_activity",
    "survey_answers": "gen_answers",
}


def generate(url: str, people: int) -> dict[str, Any]:
    """Fill the (empty) store at ``url`` with ``people`` generated people and their orders."""
    import duckdb

    from surmesure.store import open_store, schema

    store = open_store(url)
    start = time.perf_counter()
    counts: dict[str, int] = {}
    try:
        if store.is_duckdb:
            with store.begin() as conn:
                raw = store.raw_duckdb(conn)
                _generate(raw, people)
                for table, source in TARGETS.items():
                    raw.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {source}")
                    row = raw.execute(f"SELECT count(*) FROM {table}").fetchone()
                    counts[table] = int(row[0]) if row else 0
        else:
            with duckdb.connect() as con, store.begin() as conn:
                _generate(con, people)
                for table, source in TARGETS.items():
                    data = con.sql(f"SELECT * FROM {source}").to_arrow_table()
                    counts[table] = store.bulk_insert(conn, schema.metadata.tables[table], data)
    finally:
        store.dispose()
    return {"seconds": time.perf_counter() - start, "counts": counts, "peak_mb": _peak_mb()}


def run_derive(url: str) -> dict[str, Any]:
    """``derive`` on the store at ``url``, timed by step."""
    from surmesure.derive.run import derive
    from surmesure.store import open_store

    store = open_store(url)
    try:
        start = time.perf_counter()
        result = derive(store, as_of=AS_OF, horizon_days=365, discount_rate=0.1)
        seconds = time.perf_counter() - start
    finally:
        store.dispose()
    return {
        "seconds": seconds,
        "steps": result.seconds,
        "people": result.people,
        "buyers": result.buyers,
        "rows_written": result.rows_written,
        "peak_mb": _peak_mb(),
    }


def run_kpi_report(url: str) -> dict[str, Any]:
    """``kpis`` and the HTML report on the store at ``url`` (after ``derive``)."""
    from surmesure.derive.kpi import kpis
    from surmesure.derive.report import write_report
    from surmesure.store import open_store

    store = open_store(url)
    try:
        start = time.perf_counter()
        kpis(store, as_of=AS_OF)
        kpi_seconds = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            written = write_report(store, Path(tmp) / "report.html")
            report_seconds = time.perf_counter() - start
    finally:
        store.dispose()
    return {"kpi_s": kpi_seconds, "report_s": report_seconds, "report_bytes": written.bytes}


def spark_rfm(people: int) -> dict[str, Any]:
    """The RFM expression on DuckDB and on a local Spark session (2 cores), same data."""
    from surmesure.derive.rfm import rfm
    from surmesure.derive.source import ibis_backend
    from surmesure.derive.spark import copy_tables, local_session, spark_backend
    from surmesure.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        url = f"duckdb:///{Path(tmp) / 'spark.duckdb'}"
        generate(url, people)
        store = open_store(url)
        try:
            with ibis_backend(store) as duck:
                start = time.perf_counter()
                want = rfm(duck, AS_OF).to_pyarrow()
                duck_s = time.perf_counter() - start
            session = local_session(cores=2, shuffle_partitions=4)
            session.sparkContext.setLogLevel("ERROR")
            start = time.perf_counter()
            copy_tables(store, session)
            copy_s = time.perf_counter() - start
        finally:
            store.dispose()
        backend = spark_backend(session)
        rfm(backend, AS_OF).to_pyarrow()  # warm the JVM
        start = time.perf_counter()
        got = rfm(backend, AS_OF).to_pyarrow()
        spark_s = time.perf_counter() - start
        session.stop()
    same = (
        got.sort_by("person_id")
        .select(["person_id", "rfm_segment"])
        .equals(want.sort_by("person_id").select(["person_id", "rfm_segment"]))
    )
    return {"buyers": want.num_rows, "duckdb_s": duck_s, "spark_s": spark_s,
            "copy_s": copy_s, "same": same}  # fmt: skip


def cdnow_fits(repeats: int = 5) -> dict[str, Any]:
    """Best of ``repeats`` BG/NBD + Gamma-Gamma fits on CDNOW: ours and lifetimes'."""
    import numpy as np

    from surmesure.derive import bgnbd, gammagamma

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter

    spend: dict[tuple[int, str], float] = {}
    for line in CDNOW.read_text().split("\n"):
        if line.strip():
            customer, _, day, _, dollars = line.split()
            if day <= "19970930":
                key = (int(customer), day)
                spend[key] = spend.get(key, 0.0) + float(dollars)
    by_customer: dict[int, list[tuple[date, float]]] = {}
    for (customer, day), value in sorted(spend.items()):
        when = date(int(day[:4]), int(day[4:6]), int(day[6:]))
        by_customer.setdefault(customer, []).append((when, value))
    end = date(1997, 9, 30)
    stats = [
        (
            len(days) - 1,
            (days[-1][0] - days[0][0]).days / 7,
            (end - days[0][0]).days / 7,
            sum(v for _, v in days[1:]) / (len(days) - 1) if len(days) > 1 else 0.0,
        )
        for days in by_customer.values()
    ]
    x, t_x, T, m = (np.array(column, dtype=float) for column in zip(*stats, strict=True))
    repeat = x > 0

    def best(run: Any) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    def ours() -> None:
        bgnbd.fit(x, t_x, T)
        gammagamma.fit(x, m)

    def theirs() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            BetaGeoFitter().fit(x, t_x, T)
            GammaGammaFitter().fit(x[repeat], m[repeat])

    mine, peer = best(ours), best(theirs)
    params = bgnbd.fit(x, t_x, T)
    out: dict[str, Any] = {
        "customers": len(x), "ours_s": mine, "lifetimes_s": peer, "speedup": peer / mine,
        "ours_params": {k: getattr(params, k) for k in ("r", "alpha", "a", "b")},
    }  # fmt: skip
    out["pymc_marketing"] = pymc_marketing_fit(x, t_x, T, best)
    return out


def pymc_marketing_fit(x: Any, t_x: Any, T: Any, best: Any) -> dict[str, Any] | None:
    """pymc-marketing's BG/NBD at its maximum a posteriori with flat priors (so the MAP is the
    likelihood's maximum, the same estimate as ours); ``None`` when it is not installed (the
    ``peers`` extra, which ``make bench`` installs). Its first fit compiles the model: both the
    first and the best later time are reported."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pandas as pd
            from pymc_extras.prior import Prior
            from pymc_marketing.clv import BetaGeoModel
    except ImportError:
        return None
    data = pd.DataFrame({"customer_id": range(len(x)), "frequency": x, "recency": t_x, "T": T})
    flat = {name: Prior("HalfFlat") for name in ("r", "alpha", "a", "b")}
    fitted: dict[str, Any] = {}

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = BetaGeoModel(data=data, model_config=flat)
            model.fit(method="map", progressbar=False)
        posterior = model.idata.posterior
        fitted.update({k: float(posterior[k].values.ravel()[0]) for k in flat})

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    return {"first_s": first, "best_s": best(run), "params": dict(fitted)}


def _fresh(fn: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--pg-people", type=int, default=50_000)
    parser.add_argument("--spark-people", type=int, default=20_000)
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"duckdb:///{Path(tmp) / 'bench.duckdb'}"
        report["duckdb_generate"] = _fresh(generate, url, args.people)
        report["duckdb_derive"] = _fresh(run_derive, url)
        report["duckdb_kpi_report"] = _fresh(run_kpi_report, url)
    if args.pg_people:
        import sqlalchemy as sa

        name = f"surmesure_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
            report["postgres_generate"] = _fresh(generate, url, args.pg_people)
            report["postgres_derive"] = _fresh(run_derive, url)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    report["cdnow_fit"] = _fresh(cdnow_fits)
    if args.spark_people:
        report["spark_rfm"] = _fresh(spark_rfm, args.spark_people)
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    from surmesure.derive.run import STEPS

    console = Console(width=120)
    table = Table(title="derive: RFM + CLV fit + per-person outputs + storage")
    columns = ("store", "people", "order lines", "seconds", "people/s", "peak MB", *STEPS)
    for column in columns:
        table.add_column(column, justify="left" if column == "store" else "right")
    for store in ("duckdb", "postgres"):
        if f"{store}_derive" not in report:
            continue
        made, run = report[f"{store}_generate"], report[f"{store}_derive"]
        table.add_row(
            store,
            f"{run['people']:,}",
            f"{made['counts']['order_lines']:,}",
            f"{run['seconds']:.1f}",
            f"{run['people'] / run['seconds']:,.0f}",
            f"{run['peak_mb']:,.0f}",
            *(f"{run['steps'][step]:.1f}" for step in STEPS),
        )
    console.print(table)
    fit = report["cdnow_fit"]
    console.print(
        f"CDNOW fit ({fit['customers']:,} customers, BG/NBD + Gamma-Gamma, best of 5): "
        f"{fit['ours_s'] * 1000:.1f} ms against lifetimes {fit['lifetimes_s'] * 1000:.1f} ms, "
        f"{fit['speedup']:.1f}x faster"
    )
    ours = ", ".join(f"{k} {v:.4f}" for k, v in fit["ours_params"].items())
    console.print(f"  ours: {ours}")
    pm = fit["pymc_marketing"]
    if pm is None:
        console.print("  pymc-marketing: absent (make bench installs it with the peers extra)")
    else:
        theirs = ", ".join(f"{k} {v:.4f}" for k, v in pm["params"].items())
        console.print(
            f"  pymc-marketing (MAP, flat priors): {theirs}; BG/NBD alone "
            f"{pm['best_s'] * 1000:.0f} ms (first fit, compiling, {pm['first_s']:.1f} s): "
            f"{pm['best_s'] / fit['ours_s']:.0f}x our BG/NBD + Gamma-Gamma"
        )
    extra = report["duckdb_kpi_report"]
    derive_s = report["duckdb_derive"]["seconds"]
    console.print(
        f"KPIs {extra['kpi_s']:.1f} s ({extra['kpi_s'] / derive_s:.2f}x the derive time), "
        f"HTML report {extra['report_s']:.1f} s ({extra['report_s'] / derive_s:.2f}x), "
        f"{extra['report_bytes'] / 1024:,.0f} KiB"
    )
    if "spark_rfm" in report:
        spark = report["spark_rfm"]
        console.print(
            f"RFM of {spark['buyers']:,} buyers: DuckDB {spark['duckdb_s']:.2f} s, local Spark "
            f"(2 cores) {spark['spark_s']:.2f} s = {spark['spark_s'] / spark['duckdb_s']:.1f}x "
            f"DuckDB's time (copy into Spark {spark['copy_s']:.1f} s); same segments: "
            f"{spark['same']}"
        )
    made = report["duckdb_generate"]
    console.print(
        f"generated {made['counts']['order_lines']:,} order lines in {made['seconds']:.1f} s "
        f"(not part of the derive time)"
    )


if __name__ == "__main__":
    main()
