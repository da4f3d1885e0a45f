"""``recommend --all``'s processor time a person, with the learned ranker, against a commit.

    .venv/bin/python benchmarks/bench_recommend_all.py [--db FILE] [--copies 5]
        [--baseline REF] [--json]

The store holds the identified customers' orders of Online Retail II before ``CUTOFF``,
``--copies`` times over (each copy under other customer ids and invoice numbers: 4,383
customers a copy), so that the run covers many people with real baskets. The model is fitted
and kept at ``CUTOFF`` (this checkout's ``recommend --fit``); each code then recommends for
everyone (:func:`~surmesure.decide.recommend.service.recommend_all`, what ``recommend --all``
runs) in a process of its own, its model ready beforehand (a commit that keeps no model trains
its ranker in the process, with ``SURMESURE_RECOMMEND_RANKER=1``, before the clock starts).
Reported: people, seconds, processor seconds of the process and its children (the workers
``recommend_all`` may start), and milliseconds of processor time a person; the lists of both
codes are compared (how many people got the same ten products).

Measured on a heavily loaded machine (2 cores, load average 20 to 27), 16,965 people (5
copies, those with a purchase before the cut-off), one process each, the same model: this
checkout 1.688 ms of processor time a person (28.6 s), 039d1f7 2.273 ms (38.6 s), x0.74, the
same lists, scores and reasons for everyone; on the first 5,000 of them 1.996 ms against
2.545 ms. About 1,700 s of processor time for 1,000,000 people: the learned ranker's trees
(some 200 candidates a person, 150 trees) take about a third of it.

Then (load average 5 to 13), the ranker scoring today's first 100 of each person alone
(``ranker.KEEP``) and finding its leaves once per product, person and combination of places:
0.783 ms against 5bc1767's 0.997 ms in one run, 0.849 against 1.026 in another (x0.79, x0.83;
other lists, no cut-off of ``bench_recommend.py`` lower); against 50da563 (the first 100
alone, the leaves found as before) 0.808 ms against 0.997 ms with the same lists for
everyone. The ranker (features, trees, the two orders fused) is still about a third of what
is left: some 0.3 ms a person.

Then (load average 2.5 to 4), each block's purchases read in one pass into arrays (neighbour
weights, bans, the ranker's per-person features), the strongest antecedents, the cut under
the cap and the items made for the block at once, the priors added only as deep as needed:
the two codes' children interleaved four times each on the 16,965 people, medians 0.814 ms
against main's 1.095 ms (x0.74; main's ranking code that of 2591626, where this started),
in this script's one run of each 0.821 ms against 658a4af's 1.010 ms (x0.81), the same lists
for everyone. What is left, a person:
the ranker some 0.25 ms (its trees 0.15), the block's dense arrays (neighbour scores, their
orders, the fused ranks, the blend) some 0.3 ms, reading the purchases 0.07 ms, tastes
0.03 ms, the customer ids 0.03 ms: about 800 s of processor time for 1,000,000 people, some
400 s on two cores.

Then (cb41c5c; load average 3 to 4.5), each block ranked on its people's candidates alone,
not on rows as wide as the catalogue: each one's neighbours and tastes laid flat as deep as
their depth, the fusion, today's order, the blend and the cut under the cap on some 215
candidates a person instead of 3,736 columns; each row's places sorted on a line of its own;
the ranker's features found through a map of the wanted products, its places grouped by
number before its thresholds, its trees walked a thousand rows at a time. Five children of
each code interleaved (this script twice, three more alone): medians 0.508 ms against main's
0.746 ms (x0.68; in this script's runs 0.454 against 0.663 and 0.469 against 0.756), the
same lists, scores (to the bit) and reasons for everyone. What is left, a person: the ranker
0.14 ms (its trees 0.10), the best of 3,736 products for the neighbours and the tastes
0.06 ms, reading the purchases 0.06 ms, the strongest antecedents 0.035 ms, the sparse
product 0.03 ms, the fusion, the blend and the cut 0.06 ms, the tastes 0.015 ms, the items
0.03 ms: about 480 s of processor time for 1,000,000 people, some 240 s on two cores. Around
it, at that scale and outside the clock here: reading everyone's purchases into the model
(0.127 ms a person, one process: some 130 s, and 73 million purchases held as Python
tuples for 1,000,000 people with as many lines as these), their customer ids (0.024 ms: 24 s)
and the command's rows and file (0.012 ms: 12 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gitref import HEAD_SRC, checkout, describe, run_child

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "online_retail_II"
CUTOFF = "2010-09-01"
KEPT_MODELS = "0037_recommendation_models.py"
"""The migration from which a commit keeps the fitted model in the store."""

CHILD = """
import hashlib, os, resource, sys, time
from datetime import datetime
import orjson
import surmesure
from surmesure.decide.recommend import model, service
from surmesure.store import open_store

url, cutoff = sys.argv[1], datetime.fromisoformat(sys.argv[2])
store = open_store(url)
with store.connect() as conn:
    built = model.get_model(store, conn, cutoff)

def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

started, spent = time.perf_counter(), cpu()
digest = hashlib.sha256()
people = 0
for pid, _, recs in service.recommend_all(store, k=10, as_of=cutoff):
    people += 1
    digest.update(f"{pid}:{','.join(r.product_code for r in recs)};".encode())
seconds, processor = time.perf_counter() - started, cpu() - spent
print(orjson.dumps({
    "package": surmesure.__file__, "people": people, "seconds": seconds, "cpu": processor,
    "ms_cpu_a_person": processor / people * 1000, "ranking": built.description,
    "digest": digest.hexdigest(),
}).decode())
"""


def make_store(db: Path, copies: int) -> str:
    """The store of ``copies`` copies of Online Retail II's customers before the cut-off, its
    model fitted and kept (once: an existing file is used as it is)."""
    url = f"duckdb:///{db}"
    if db.exists():
        return url
    from surmesure.collect.importer import import_file
    from surmesure.decide.recommend.kept import fit_and_keep
    from surmesure.store import open_store

    table = pq.read_table(DATA / "online_retail_II_2009_2010.parquet")
    table = table.filter(
        pc.and_(pc.is_valid(table["Customer ID"]), pc.less(table["InvoiceDate"], CUTOFF))
    )
    parts = []
    for n in range(copies):
        ids = pc.add(table["Customer ID"], float(n * 100_000))
        invoices = pc.binary_join_element_wise(pa.scalar(f"{n}-"), table["Invoice"], "")
        part = table.set_column(table.schema.get_field_index("Customer ID"), "Customer ID", ids)
        parts.append(part.set_column(0, "Invoice", invoices))
    path = db.with_suffix(".parquet")
    pq.write_table(pa.concat_tables(parts), path)
    store = open_store(url)
    try:
        import_file(store, "orders", path, preset="online-retail")
        version, fitted = fit_and_keep(store, datetime.fromisoformat(CUTOFF))
        print(f"kept model version {version}: {fitted['cpu_seconds']} s CPU to fit")
    finally:
        store.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, help="DuckDB file to keep (made once)")
    parser.add_argument("--copies", type=int, default=5, help="copies of the customers")
    parser.add_argument("--baseline", metavar="REF", help="a commit to compare with")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "recommend_all.duckdb"
    url = make_store(db, args.copies)
    os.environ["SURMESURE_RECOMMEND_RANKER"] = "1"  # a commit that keeps no model trains one
    runs = {f"this checkout ({describe('HEAD')}+)": run_child(HEAD_SRC, CHILD, url, CUTOFF)}
    if not args.json:
        show(runs)
    if args.baseline is not None:
        with checkout(args.baseline) as src:
            # a commit that keeps models reads the same one; an older one trains its own
            keeps = (src / "surmesure/store/migrations/versions" / KEPT_MODELS).exists()
            runs[describe(args.baseline)] = run_child(
                src, CHILD, url if keeps else older(db), CUTOFF
            )
    same = len({r["digest"] for r in runs.values()}) == 1
    if args.json:
        print(orjson.dumps({"runs": runs, "same_lists": same}).decode())
        return
    show(runs)
    print(f"same lists for everyone: {same}")


def older(db: Path) -> str:
    """A copy of the store as a commit before the kept models reads it (no such table)."""
    copy = db.with_name(db.stem + "-older.duckdb")
    shutil.copyfile(db, copy)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    with duckdb.connect(str(copy)) as conn:
        conn.execute("DROP TABLE recommendation_models")
        conn.execute("UPDATE alembic_version SET version_num = '0036'")
    return f"duckdb:///{copy}"


def show(runs: dict[str, Any]) -> None:
    for name, r in runs.items():
        print(
            f"{name}: {r['people']:,} people in {r['seconds']:.1f} s, {r['cpu']:.1f} s CPU, "
            f"{r['ms_cpu_a_person']:.3f} ms CPU a person; {r['ranking']}"
        )
        print(f"  1,000,000 people: {r['ms_cpu_a_person'] * 1000:.0f} s of processor time")


if __name__ == "__main__":
    main()
