"""Segment engines compared: the SQLAlchemy compiler against the Ibis one on the same store
(counts must agree), and the conformance table on a local Spark session.

    .venv/bin/python benchmarks/bench_segment_engines.py --url duckdb:///demo/surmesure.duckdb

measures every saved segment, the demo's segment files and the 50 definitions of
``bench_segment.py`` on the store at ``--url`` (the demo world by default), as of the data's
present; ``--spark`` adds the conformance table on Spark.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from surmesure.config import get_settings
from surmesure.derive.source import ibis_backend
from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment import membership, repository
from surmesure.segment.definitions import closure, load_file
from surmesure.segment.ibis_compile import members
from surmesure.segment.ibis_tables import (
    export_parquet,
    property_keys,
    spark_tables,
    store_tables,
)
from surmesure.store import open_store
from surmesure.store.engine import Store
from surmesure.store.span import present

TESTS = Path(__file__).resolve().parents[1] / "tests" / "segment"


def ibis_size(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
) -> int:
    half_life = get_settings().trait_half_life_days
    keys = property_keys(closure(definition, catalog).values())
    with ibis_backend(store) as backend:
        query = members(
            definition,
            store_tables(backend, keys),
            now=now,
            half_life_days=half_life,
            catalog=catalog,
            index_key=blind.index_key(store),
        )
        return int(query.count().to_pyarrow().as_py())


def compare_engines(
    store: Store, definitions: Sequence[SegmentDefinition], now: datetime, repeat: int = 2
) -> None:
    """Size of every definition with each compiler (best of ``repeat``), totals and ratio;
    the counts must agree."""
    catalog = {d.name: d for d in definitions}
    total = {"sqlalchemy": 0.0, "ibis": 0.0}
    for definition in definitions:
        counts = {}
        for engine in total:
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                if engine == "ibis":
                    counts[engine] = ibis_size(store, definition, now, catalog)
                else:
                    counts[engine] = membership.size(store, definition, now, catalog)
                best = min(best, time.perf_counter() - start)
            total[engine] += best
        assert counts["ibis"] == counts["sqlalchemy"], (definition.name, counts)
    print(
        f"  {len(definitions)} segment sizes: SQLAlchemy compiler {total['sqlalchemy']:.3f} s, "
        f"Ibis compiler {total['ibis']:.3f} s (Ibis / SQLAlchemy "
        f"{total['ibis'] / total['sqlalchemy']:.1f}x); same counts"
    )


def conformance_on_spark() -> None:
    """The conformance table evaluated by Spark (one local session), each world's tables
    exported to Parquet from a DuckDB store first: session start, export and evaluation
    times, and every case checked against its expected members."""
    sys.path.insert(0, str(TESTS))
    from segment_world import load_world, utc
    from test_conformance import BY_WORLD, TABLE, definitions

    from surmesure.derive.spark import local_session

    start = time.perf_counter()
    session = local_session(cores=1, shuffle_partitions=1)
    session.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - start
    exported = evaluated = 0.0
    cases = wrong = 0
    half_life = float(TABLE["half_life_days"])
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"duckdb:///{Path(tmp) / 'store.duckdb'}")
        for world, table in sorted(BY_WORLD.items()):
            load_world(store, TABLE["worlds"][world])
            docs = [definitions(case) for case in table]
            keys = property_keys(d for one, cat in docs for d in (one, *cat.values()))
            start = time.perf_counter()
            with ibis_backend(store) as backend:
                export_parquet(store_tables(backend, keys), Path(tmp) / world)
            exported += time.perf_counter() - start
            start = time.perf_counter()
            tables = spark_tables(session, Path(tmp) / world, keys)
            for case, (definition, catalog) in zip(table, docs, strict=True):
                query = members(
                    definition,
                    tables,
                    now=utc(case["now"]),
                    half_life_days=half_life,
                    catalog=catalog,
                    index_key=blind.index_key(store),
                )
                got = sorted(query.to_pyarrow()["person_id"].to_pylist())
                cases, wrong = cases + 1, wrong + (got != case["expected"])
            evaluated += time.perf_counter() - start
        store.dispose()
    session.stop()
    print(
        f"  conformance table on Spark: {cases} cases, {wrong} wrong; session start "
        f"{started:.1f} s, Parquet export {exported:.1f} s, evaluation {evaluated:.1f} s "
        f"({evaluated / cases * 1000:.0f} ms a case)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="duckdb:///demo/surmesure.duckdb")
    parser.add_argument("--segments", type=Path, default=Path("demo/segments"))
    parser.add_argument("--spark", action="store_true")
    args = parser.parse_args()
    from bench_segment import fifty

    store = open_store(args.url)
    now, _ = present(store, datetime.now(UTC).replace(tzinfo=None))
    with store.connect() as conn:
        saved = list(repository.catalog(conn).values())
    files = [load_file(f) for f in sorted(args.segments.glob("*.yaml"))]
    print(f"{args.url} as of {now:%Y-%m-%d %H:%M}")
    compare_engines(store, [*saved, *files, *fifty()], now)
    store.dispose()
    if args.spark:
        conformance_on_spark()


if __name__ == "__main__":
    main()
