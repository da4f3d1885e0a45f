"""What the quarantine costs: storing refused records, recognising them when refused again,
finding a person's records among all of them (erasure, export), and listing and showing them,
on DuckDB and on PostgreSQL.

Each record is a refused CRM row holding an e-mail address and a customer id, stored in
groups of ``--group`` as an import stores them. Run it with another checkout's sources first
on ``PYTHONPATH`` to compare two versions (the quarantine in clear, the quarantine sealed).

    python benchmarks/bench_quarantine.py [--records 20000] [--group 1000]
        [--postgres URL|none] [--json]
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import Any

from bench_collect import DEFAULT_PG, on_both_stores, print_results

AT = datetime(2026, 3, 1, 12, 0)


def run(url: str, records: int, group: int) -> dict[str, Any]:
    from surmesure.collect import quarantine
    from surmesure.protect import scope
    from surmesure.store import open_store, schema

    store = open_store(url)
    items = [
        quarantine.Item(
            f"row {i + 2}",
            "birth_date",
            f"31/02/19{i % 100:02d}",
            "birth_date: not a date",
            {"Email": f"client{i}@example.com", "Client": f"C{i:07d}", "City": "Lyon"},
        )
        for i in range(records)
    ]
    groups = [items[s : s + group] for s in range(0, records, group)]

    def store_all() -> tuple[float, int]:
        start, added = time.perf_counter(), 0
        for batch in groups:
            with store.begin() as conn:
                added += quarantine.add(
                    store, conn, batch, run_id=None, origin="import", kind="customers",
                    source_name="crm.csv", now=AT,
                )  # fmt: skip
        return time.perf_counter() - start, added

    try:
        stored_s, added = store_all()
        again_s, again = store_all()
        assert (added, again) == (records, 0)
        start = time.perf_counter()
        with store.connect() as conn:
            found = scope.payload_matches(
                conn, schema.quarantine, [("email", "client7@example.com")], "FR"
            )
        match_s = time.perf_counter() - start
        assert len(found) == 1
        start = time.perf_counter()
        for _ in range(20):
            quarantine.summary(store, limit=20)
        list_ms = (time.perf_counter() - start) * 1000 / 20
        start = time.perf_counter()
        for i in range(1, 101):
            quarantine.get(store, i)
        show_ms = (time.perf_counter() - start) * 1000 / 100
    finally:
        store.dispose()
    return {
        "records": records,
        "stored_per_s": round(records / stored_s),
        "refused_again_per_s": round(records / again_s),
        "find_a_person_s": round(match_s, 3),
        "list_ms": round(list_ms, 2),
        "show_ms": round(show_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=1_000)
    parser.add_argument("--postgres", default=DEFAULT_PG, help="admin URL; 'none' to skip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = on_both_stores(lambda url: run(url, args.records, args.group), args.postgres)
    print_results(results, "the quarantine", args.json)


if __name__ == "__main__":
    main()
