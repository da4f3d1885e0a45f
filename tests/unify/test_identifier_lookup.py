"""Known identifiers are found by probing an index on DuckDB, not by reading them all."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from surmesure.collect.importer import import_file
from surmesure.store import open_store
from surmesure.unify.resolver import probe_query


def test_a_duckdb_lookup_probes_the_value_index_and_finds_the_known_person(
    tmp_path: Path,
) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'store.duckdb'}")
    crm = tmp_path / "crm.csv"
    lines = [f"C{i},c{i}@example.com" for i in range(300)]
    crm.write_text("customer_id,email\n" + "\n".join(lines) + "\n")
    assert import_file(store, "customers", crm, source="crm").rows_quarantined == 0
    with store.connect() as conn:
        (a, pa_), (b, pb) = conn.execute(
            sa.text(
                "SELECT value, person_id FROM identifiers WHERE kind = 'customer_id' "
                "ORDER BY person_id LIMIT 2"
            )
        ).all()
    assert store.backend.probe_max >= 2
    run = store.backend.run
    with store.connect() as conn:
        plan = run(conn, "EXPLAIN ANALYZE " + probe_query(2), {"v0": a, "v1": b})[0][1]
        found = run(conn, probe_query(2), {"v0": a, "v1": b})
    store.dispose()
    assert "Type: Index Scan" in plan  # what DuckDB did, not what it planned
    assert sorted((r[1], r[3]) for r in found) == sorted([(a, pa_), (b, pb)])
