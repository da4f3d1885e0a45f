"""A bulk import into tables holding fewer rows than the file leaves their secondary indexes
out while it loads and makes them once at the end (DuckDB rewrites an index whole at each
checkpoint); primary keys stay, so re-imports stay idempotent, and a process that dies inside
leaves a store whose next opening makes the indexes again. PostgreSQL keeps every index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from surmesure.collect.importer import import_file
from surmesure.store import Store, open_store, schema
from surmesure.store.backends.duckdb import DEFERRED, memory_bytes

SECONDARY = {"ix_traits_person_id", "ix_identifiers_value", "ix_identifiers_person_id"}


def _indexes(store: Store) -> set[tuple[str, str]]:
    """Every index of the store and how it is made (name, SQL on DuckDB; name, definition on
    PostgreSQL), primary keys included."""
    with store.connect() as conn:
        if store.is_duckdb:
            rows = conn.execute(sa.text("SELECT index_name, sql FROM duckdb_indexes()")).all()
            keys = conn.execute(
                sa.text(
                    "SELECT table_name, array_to_string(constraint_column_names, ',') "
                    "FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
                )
            ).all()
        else:
            rows = conn.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
            ).all()
            keys = []
    return {(str(a), str(b)) for a, b in [*rows, *keys]}


def _customers(path: Path, count: int) -> Path:
    path.write_text(
        "customer_id,email,first_name\n"
        + "".join(f"C{i},p{i}@example.com,Ann{i}\n" for i in range(count))
    )
    return path


def test_a_large_file_loads_without_secondary_indexes_and_ends_with_them(
    store: Store, tmp_path: Path
) -> None:
    before = _indexes(store)
    assert {name for name, _ in before} >= SECONDARY
    path = _customers(tmp_path / "customers.csv", 2_000)
    seen: list[set[str]] = []

    def after_chunk(done: int, total: int) -> None:
        seen.append({name for name, _ in _indexes(store)})

    first = import_file(store, "customers", path, chunk_rows=250, on_progress=after_chunk)
    assert first.chunks == 8 and first.new_people == 2_000 and first.rows_duplicate == 0
    assert _indexes(store) == before
    if store.is_duckdb:
        # a file of several chunks: from the second on, the indexes wait
        assert seen[0] >= SECONDARY
        assert all(not (names & SECONDARY) for names in seen[1:])
        assert not Path(f"{store.backend.config.path}{DEFERRED}").exists()  # type: ignore[attr-defined]
    else:
        assert all(names >= SECONDARY for names in seen)
    # the keys stayed: the same file again stores nothing twice, indexes kept throughout
    seen.clear()
    again = import_file(store, "customers", path, chunk_rows=250, on_progress=after_chunk)
    assert again.rows_duplicate == 2_000 and again.new_people == 0 and again.rows_accepted == 0
    assert all(names >= SECONDARY for names in seen)
    assert _indexes(store) == before
    with store.connect() as conn:
        people = conn.execute(sa.text("SELECT count(*) FROM people")).scalar_one()
        ids = conn.execute(sa.text("SELECT count(*), count(DISTINCT value) FROM identifiers")).one()
    assert people == 2_000 and ids[0] == ids[1] == 4_000  # a customer id and an e-mail each


def test_a_block_that_fails_still_ends_with_every_index(store: Store) -> None:
    before = _indexes(store)
    with pytest.raises(RuntimeError, match="half way"), store.deferred_indexes(10**9):
        raise RuntimeError("refused half way")
    assert _indexes(store) == before


def test_a_store_whose_import_died_inside_makes_its_indexes_again_when_opened(
    duckdb_store: Store,
) -> None:
    before = _indexes(duckdb_store)
    url, path = duckdb_store.url, Path(duckdb_store.backend.config.path)  # type: ignore[attr-defined]
    duckdb_store.dispose()
    # a process that dies the hard way (no finally, no exit handler) inside the block
    code = (
        "import os, sqlalchemy as sa\n"
        "from surmesure.store import open_store, schema\n"
        f"store = open_store({url!r})\n"
        "with store.deferred_indexes(10**9):\n"
        "    with store.begin() as conn:\n"
        "        conn.execute(schema.people.insert().values(person_id=7, created_at=sa.func.now(),"
        " updated_at=sa.func.now()))\n"
        "    os._exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    marker = Path(f"{path}{DEFERRED}")
    assert set(marker.read_text().split()) >= SECONDARY
    import duckdb

    with duckdb.connect(str(path), read_only=True) as raw:
        left = {r[0] for r in raw.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
    assert not (left & SECONDARY)  # the store as the crash left it
    reopened = open_store(url)
    try:
        assert _indexes(reopened) == before
        assert not marker.exists()
        with reopened.connect() as conn:
            found = conn.execute(sa.select(schema.people.c.person_id)).scalars().all()
        assert found == [7]  # committed before the crash: kept
    finally:
        reopened.dispose()


def test_a_table_holding_more_rows_than_the_file_keeps_its_indexes(duckdb_store: Store) -> None:
    rows = pa.table(
        {
            "person_id": pa.array(range(1, 101), pa.int64()),
            "created_at": pa.array([0] * 100, pa.timestamp("us")),
            "updated_at": pa.array([0] * 100, pa.timestamp("us")),
        }
    )
    with duckdb_store.begin() as conn:
        duckdb_store.bulk_insert(conn, schema.people, rows)
    with duckdb_store.deferred_indexes(50):
        names = {name for name, _ in _indexes(duckdb_store)}
    assert "ix_people_merged_into" in names  # 100 people, 50 rows to come: kept
    assert not (names & SECONDARY)  # empty tables: left out


@pytest.mark.parametrize("limit", ["1GB", "300MB", "2GiB", "123KB"])
def test_memory_sizes_read_as_duckdb_writes_them(tmp_path: Path, limit: str) -> None:
    import duckdb

    expected = int(limit[:-3]) * 2**30 if limit.endswith("GiB") else None
    if expected is None:
        scale = {"GB": 10**9, "MB": 10**6, "KB": 10**3}[limit[-2:]]
        expected = int(limit[:-2]) * scale
    with duckdb.connect(str(tmp_path / "m.duckdb"), config={"memory_limit": limit}) as raw:
        written = raw.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    # DuckDB rounds to one decimal in the unit it picks
    assert memory_bytes(written) == pytest.approx(expected, rel=0.001), written
    assert memory_bytes("512 bytes") == 512
