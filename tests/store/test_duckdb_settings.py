"""DuckDB's checkpoint threshold: the store's default, or the one its URL names."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from surmesure.store import open_store, schema
from surmesure.store.backends.duckdb import RELEASE_ROOM


def _threshold_and_wal(url: str, wal: Path) -> tuple[str, bool]:
    """The store's threshold, and whether its log still holds over 16 MB after 20 MB were
    written in four commits."""
    store = open_store(url)
    rows = 40_000
    data = pa.table(
        {
            "record_key": [f"k{i}" for i in range(rows)],
            "name": ["note"] * rows,
            "person_id": pa.array(range(rows), pa.int64()),
            "value": [f'"{os.urandom(250).hex()}"' for _ in range(rows)],
            "source": ["crm"] * rows,
            "observed_at": pa.array([0] * rows, pa.timestamp("us")),
            "reliability": [1.0] * rows,
        }
    )
    with store.connect() as conn:
        threshold = conn.execute(sa.text("SELECT current_setting('checkpoint_threshold')")).all()
    for first in range(0, rows, rows // 4):  # four commits of 5 MB
        with store.begin() as conn:
            store.bulk_insert(conn, schema.traits, data.slice(first, rows // 4))
    kept = wal.exists() and wal.stat().st_size > 16 * 2**20
    store.dispose()
    return str(threshold[0][0]), kept


def test_a_store_checkpoints_past_256_mb_of_log_unless_its_url_says(tmp_path: Path) -> None:
    default, kept = _threshold_and_wal(f"duckdb:///{tmp_path}/a.duckdb", tmp_path / "a.duckdb.wal")
    assert default.startswith("244.1 MiB")
    assert kept  # 20 MB written, no checkpoint yet: the log holds them
    named, kept = _threshold_and_wal(
        f"duckdb:///{tmp_path}/b.duckdb?checkpoint_threshold=16MB", tmp_path / "b.duckdb.wal"
    )
    assert named.startswith("15.2 MiB")
    assert not kept  # past 16 MB a commit checkpointed and emptied the log


@pytest.mark.parametrize("trigger", ["log", "memory"])
def test_an_import_checkpoints_once_the_log_holds_a_quarter_of_the_file_or_memory_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trigger: str
) -> None:
    from surmesure.collect.importer import import_file
    from surmesure.store.backends import duckdb as backend

    if trigger == "log":
        monkeypatch.setattr(backend, "SETTLE_LOG", 0)  # the share alone decides
    else:  # any row held in memory is too many: every chunk is checkpointed
        monkeypatch.setattr(backend, "SETTLE_MEMORY", 1e-12)
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer_id,email,first_name\n"
        + "".join(f"C{i},p{i}@example.com,Ann{i}\n" for i in range(2_000))
    )
    store = open_store(f"duckdb:///{tmp_path}/c.duckdb")
    file, wal = tmp_path / "c.duckdb", tmp_path / "c.duckdb.wal"
    seen: list[tuple[int, int, int]] = []

    def after_chunk(done: int, total: int) -> None:
        with store.connect() as conn:
            held = conn.execute(
                sa.text(
                    "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
                    "WHERE tag IN ('ART_INDEX', 'IN_MEMORY_TABLE')"
                )
            ).scalar_one()
        seen.append((wal.stat().st_size if wal.exists() else 0, file.stat().st_size, int(held)))

    result = import_file(store, "customers", path, chunk_rows=250, on_progress=after_chunk)
    store.dispose()
    assert result.chunks == 8 and result.new_people == 2_000
    # a log past a quarter of the file was checkpointed into it: none is left after a chunk
    assert all(log < size * backend.SETTLE_SHARE for log, size, _ in seen)
    settled = [held for log, _, held in seen if log == 0]
    # a checkpoint left the rows and indexes out of memory
    assert settled == [0] * len(settled)
    if trigger == "log":  # some chunks, not all: each checkpoint rewrites the indexes whole
        assert 1 <= len(settled) < len(seen)
    else:
        assert len(settled) == len(seen)


def _table_pages(conn: sa.Connection) -> tuple[int, str]:
    """DuckDB's cached table pages (bytes), and its memory limit."""
    pages = conn.execute(
        sa.text("SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'")
    ).scalar_one()
    limit = conn.execute(sa.text("SELECT current_setting('memory_limit')")).scalar_one()
    return int(pages or 0), str(limit)


def test_table_pages_read_once_are_let_go_and_the_memory_limit_stays(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/read.duckdb"
    store = open_store(url)
    with store.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE pages AS SELECT i, md5(i::VARCHAR) AS s FROM range(6000000) r(i)")
        )
    with store.connect() as conn:
        conn.execute(sa.text("CHECKPOINT"))  # on disk: pages DuckDB may let go
    store.dispose()
    store = open_store(url)
    with store.connect() as conn:
        total = conn.execute(sa.text("SELECT sum(length(s)) FROM pages")).scalar_one()
        read, limit = _table_pages(conn)
    assert total == 32 * 6_000_000 and read > RELEASE_ROOM + 32 * 2**20  # the whole read is cached
    freed = store.release_read_cache()
    with store.connect() as conn:
        kept, limit_after = _table_pages(conn)
        again = conn.execute(sa.text("SELECT sum(length(s)) FROM pages")).scalar_one()
    assert kept <= RELEASE_ROOM and freed >= (read - kept) * 0.9
    assert limit_after == limit and again == total  # the same room, the same rows
    store.dispose()
    named = open_store(f"{url}?memory_limit=1500MB")
    with named.connect() as conn:
        conn.execute(sa.text("SELECT sum(length(s)) FROM pages")).scalar_one()
        before = _table_pages(conn)[1]
    assert named.release_read_cache() > 0
    with named.connect() as conn:
        assert _table_pages(conn)[1] == before  # the limit the URL named, put back
    named.dispose()
    memory = open_store("duckdb:///:memory:")
    assert memory.release_read_cache() == 0  # in memory, the pages are the tables
    memory.dispose()
