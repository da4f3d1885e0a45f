"""Imports stream their file a chunk at a time: hostile rows are quarantined with their reason
and row while the good ones are stored, a chunk is a transaction of bounded size, and an import
stopped half way then run again stores every record once."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest
from import_helpers import count, quarantined, rows, scalar, write_file

from conftest import opened_rows
from surmesure.collect.files import read_chunks
from surmesure.collect.importer import LineCounter, import_file, with_line_numbers
from surmesure.collect.mapping import POSITION
from surmesure.protect import blind
from surmesure.store import Store

HOSTILE = (
    b"customer_id,email,first_name,birth_date\n"
    b"C1,ann@example.com,Ann,1980-02-03\n"  # row 1
    b"C2,bob@example.com,Bob,1985-13-45\n"  # row 2: no such date
    b"C3,not-an-address,Cy,1990-01-01\n"  # row 3: not an e-mail
    b"C4,dee@example.com,D\xe9e,1991-04-05\n"  # row 4: Latin-1, not UTF-8
    b'C5,eve@example.com,"=HYPERLINK(""http://x.test"",""Eve"")",1992-05-06\n'  # row 5
    b"C6,fay@example.com,Fay\n"  # row 6: a cell short
    b"C7,gus@example.com,Gus,1970-07-08\n"  # row 7
    b"C8,hal@example.com,\"+cmd|' /C calc'!A0\",1971-08-09\n"  # row 8: a formula too
    b"C9,ivy@example.com,Ivy,1972-09-10\n"  # row 9
)


@pytest.mark.parametrize("chunk", [2, 3, 100])
def test_hostile_rows_are_quarantined_with_reason_and_row(
    store: Store, tmp_path: Path, chunk: int
) -> None:
    path = tmp_path / "hostile.csv"
    path.write_bytes(HOSTILE)
    result = import_file(store, "customers", path, chunk_rows=chunk)
    assert result.rows_read == 9
    assert result.rows_accepted == 3 and result.rows_quarantined == 6
    assert result.chunks == math.ceil(7 / chunk)  # readable records make the chunks
    stored = rows(store, "SELECT value FROM identifiers WHERE kind = 'customer_id'")
    known = {f"C{n}": blind.index(store, "customer_id", f"C{n}") for n in range(1, 10)}
    assert sorted(c for c, index in known.items() if {"value": index} in stored) == [
        "C1",
        "C7",
        "C9",
    ]
    names = opened_rows(store, "traits", "name = 'first_name'")
    assert sorted(str(r["value"]).strip('"') for r in names) == ["Ann", "Gus", "Ivy"]
    refused = {r["location"]: (r["field"], r["reason"]) for r in quarantined(store)}
    assert sorted(refused, key=lambda loc: int(loc.split()[1])) == [
        f"row {n}" for n in (2, 3, 4, 5, 6, 8)
    ]
    assert refused["row 2"][0] == "birth_date"
    assert refused["row 3"] == ("email", "email: not an e-mail address; expected name@domain.tld")
    assert "not UTF-8" in refused["row 4"][1]
    assert refused["row 5"][0] == "first_name" and "spreadsheet formula" in refused["row 5"][1]
    assert refused["row 6"][1] == "row has 3 cells, the header has 4"
    assert refused["row 8"][0] == "first_name" and "spreadsheet formula" in refused["row 8"][1]
    # the unreadable row keeps what could be read of it
    [latin] = [r for r in quarantined(store) if r["location"] == "row 4"]
    assert latin["payload"]["_malformed"]["cells"][2] == "D\ufffde"


def test_a_second_import_of_the_same_file_changes_nothing(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "hostile.csv"
    path.write_bytes(HOSTILE)
    tables = ("identifiers", "traits", "people", "merges", "identity_claims", "quarantine")
    import_file(store, "customers", path, chunk_rows=2)
    before = {t: count(store, t) for t in tables}
    again = import_file(store, "customers", path, chunk_rows=4)
    assert (again.rows_accepted, again.rows_duplicate, again.rows_quarantined) == (0, 3, 6)
    assert {t: count(store, t) for t in tables} == before


def _orders(lines: int) -> list[dict[str, str]]:
    """``lines`` order lines, orders of 1 to 4 lines, one order's lines split apart in the
    file (its first line comes first, its others last)."""
    out = []
    for i in range(lines):
        order = "O-split" if i in (0, lines - 1, lines - 2) else f"O{i // 3}"
        out.append(
            {
                "order_id": order,
                "customer_id": f"C{i % 7}",
                "ordered_at": "2024-03-01 10:00:00",
                "product_code": f"P{i % 5}",
                "quantity": str(1 + i % 3),
                "unit_price": "2.5",
            }
        )
    return out


def _stored_lines(store: Store) -> list[tuple[str, int, str, int]]:
    found = rows(store, "SELECT order_id, line_no, product_code, quantity FROM order_lines")
    return sorted((r["order_id"], r["line_no"], r["product_code"], r["quantity"]) for r in found)


def _expected_lines(records: list[dict[str, str]]) -> list[tuple[str, int, str, int]]:
    seen: dict[str, int] = {}
    out = []
    for r in records:
        seen[r["order_id"]] = seen.get(r["order_id"], 0) + 1
        out.append((r["order_id"], seen[r["order_id"]], r["product_code"], int(r["quantity"])))
    return sorted(out)


def test_chunks_bound_a_transaction_and_number_lines_over_the_whole_file(
    store: Store, tmp_path: Path
) -> None:
    records = _orders(103)
    path = write_file(tmp_path, "orders", "csv.gz", records)
    result = import_file(store, "orders", path, chunk_rows=10)
    assert (result.chunks, result.largest_chunk) == (11, 10)
    assert result.rows_accepted == 103
    # a line's place in its order counts the lines of the chunks before
    assert _stored_lines(store) == _expected_lines(records)
    total = scalar(store, "SELECT total_amount FROM orders WHERE order_id = 'O-split'")
    assert total == pytest.approx(2.5 * sum(int(r["quantity"]) for r in records[:1] + records[-2:]))
    assert count(store, "import_runs") == 1


def test_an_import_stopped_half_way_then_run_again_stores_each_record_once(
    store: Store, tmp_path: Path
) -> None:
    records = _orders(50)
    path = write_file(tmp_path, "orders", "parquet", records)

    class Stop(Exception):
        pass

    def stop_after_two_chunks(done: int, total: int) -> None:
        if done >= 16:
            raise Stop

    with pytest.raises(Stop):
        import_file(store, "orders", path, chunk_rows=8, on_progress=stop_after_two_chunks)
    assert count(store, "order_lines") == 16  # two chunks committed, nothing after
    again = import_file(store, "orders", path, chunk_rows=8)
    assert (again.rows_accepted, again.rows_duplicate) == (34, 16)
    assert _stored_lines(store) == _expected_lines(records)
    totals = rows(store, "SELECT order_id, total_amount FROM orders ORDER BY 1")
    expected: dict[str, float] = {}
    for r in records:
        expected[r["order_id"]] = expected.get(r["order_id"], 0) + 2.5 * int(r["quantity"])
    assert {r["order_id"]: r["total_amount"] for r in totals} == pytest.approx(expected)


def test_the_line_counter_keeps_its_counts_on_disk_and_counts_over_every_chunk() -> None:
    """A file of many orders: the counts of the chunks before are right, and none of them
    (nor their index) stays in memory after a chunk; only pages DuckDB may evict, within
    the counter's limit."""
    counter = LineCounter()
    chunks, rows_per_chunk = 12, 6_000
    held: list[tuple[int, int]] = []
    numbers: dict[str, list[int]] = {}
    try:
        for c in range(chunks):
            # three lines an order, one order of each chunk continued in the next, and order
            # "O-long" in every chunk
            first = c * (rows_per_chunk - 1)
            ids = [f"O{(first + i) // 3}" for i in range(rows_per_chunk - 1)]
            ids.append("O-long")
            mapped = pa.table(
                {POSITION: pa.array(range(rows_per_chunk), pa.int64()), "order_id": ids}
            )
            numbered = with_line_numbers(mapped, counter=counter)
            for order, n in zip(ids, numbered.column("line_no").to_pylist(), strict=True):
                numbers.setdefault(order, []).append(n)
            kept, total = counter.con.execute(
                "SELECT coalesce(sum(memory_usage_bytes) FILTER (tag IN ('ART_INDEX', "
                "'IN_MEMORY_TABLE')), 0), sum(memory_usage_bytes) FROM duckdb_memory()"
            ).fetchall()[0]
            held.append((int(kept), int(total)))
        stored = counter.con.execute("SELECT count(*), sum(n) FROM seen").fetchall()[0]
    finally:
        counter.close()
    assert numbers["O-long"] == list(range(1, chunks + 1))
    assert all(n == list(range(1, len(n) + 1)) for n in numbers.values())
    assert numbers[f"O{(rows_per_chunk - 2) // 3}"] == [1, 2, 3]  # two lines in chunk 0
    assert stored == (len(numbers), chunks * rows_per_chunk)
    assert all(kept == 0 for kept, _ in held)  # in memory, they grow by 1 MB a chunk
    assert max(total for _, total in held) <= 32 * 2**20


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet", "jsonl", "jsonl.gz"])
def test_every_format_streams_in_chunks_of_the_size_asked(tmp_path: Path, fmt: str) -> None:
    records = [{"product_code": f"P{i}", "name": f"Item {i}"} for i in range(25)]
    path = write_file(tmp_path, "products", fmt, records)
    chunks = list(read_chunks(path, rows=10))
    assert [c.table.num_rows for c in chunks] == [10, 10, 5]
    assert [n for c in chunks for n in c.rows.to_pylist()] == list(range(1, 26))
    assert [v for c in chunks for v in c.table.column("product_code").to_pylist()] == [
        r["product_code"] for r in records
    ]
    assert chunks[-1].done == chunks[-1].total > 0
