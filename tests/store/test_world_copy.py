"""``benchmarks/world_copy.py``: a DuckDB store copied into a new PostgreSQL database holds the
same rows, reads the same person (sealed values opened under the same key), keeps the indexes
the migrations made and draws ids after the copied ones."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import ROOT, fresh_postgres
from protect.person_world import ANA, import_world, write_world
from surmesure.store import Store, open_store, schema
from surmesure.unify.profile import show

sys.path.insert(0, str(ROOT / "benchmarks"))
import world_copy

NOW = datetime(2024, 5, 10, 18, 0)


@pytest.mark.postgres
def test_a_copied_world_holds_the_same_rows_and_people(duckdb_store: Store, tmp_path: Path) -> None:
    import_world(duckdb_store, write_world(tmp_path))
    path = Path(duckdb_store.url.split(":///", 1)[1])
    ana_duckdb = show(duckdb_store, f"email:{ANA['email']}", now=NOW).to_dict()
    with duckdb_store.connect() as conn:
        counts = duckdb_store.table_counts(conn)
    duckdb_store.dispose()  # the copy opens the file read-only

    with fresh_postgres("world_copy") as url:
        report = world_copy.copy_world(path, url, quiet=True)
        with pytest.raises(world_copy.CopyError, match="holds people already"):
            world_copy.copy_world(path, url, quiet=True)

        assert report.equal
        assert {t.table: t.target_rows for t in report.tables} == counts
        assert counts["traits"] and counts["merges"] and counts["quarantine"]
        copy = open_store(url)
        try:
            assert show(copy, f"email:{ANA['email']}", now=NOW).to_dict() == ana_duckdb
            with copy.connect() as conn:
                assert copy.table_counts(conn) == counts
                people = conn.execute(sa.select(sa.func.max(schema.people.c.person_id)))
                top = int(people.scalar_one())
                assert copy.next_ids(conn, schema.person_id_seq, 1) == [top + 1]
        finally:
            copy.dispose()
