"""Reading import files into Arrow tables, in file order, a chunk of records at a time.

Formats are chosen by extension: ``.csv`` and ``.csv.gz`` (UTF-8, header row), ``.parquet``,
and JSON Lines (``.jsonl`` / ``.ndjson``, optionally ``.gz``). CSV cells are read as text,
exactly as written (an empty cell is missing), so nothing is reinterpreted before validation;
Parquet keeps its own types; JSON Lines keep JSON's scalar types where a column is consistent
within a chunk.

:func:`read_chunks` streams the file: at most ``rows`` records a chunk (the last one may hold
fewer), so memory depends on the chunk, not on the file. CSV is parsed by Arrow's streaming
reader, Parquet read a row group batch at a time. A JSON Lines chunk has every column of the
chunks before it (missing ones as nulls).

A row that cannot be read as a record (a CSV row with the wrong number of cells or cells that
are not UTF-8, a JSON line that is not an object) is not dropped: it comes back in
:attr:`RawFile.malformed` of the chunk it falls in, with its 1-based data row number, for the
quarantine.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from surmesure.errors import InvalidInput

FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".ndjson.gz": "jsonl",
}

CHUNK_ROWS = 50_000
"""Records a chunk holds by default: each is validated, stored and committed on its own."""

BLOCK_BYTES = 1 << 22
"""Bytes Arrow's CSV reader parses at once (a batch of the stream)."""


@dataclass(frozen=True)
class Malformed:
    """A row that is not a record: ``row`` is its 1-based data row, ``payload`` what was read."""

    row: int
    reason: str
    payload: dict[str, Any]


@dataclass
class RawFile:
    """The records of a chunk of a file as read: ``table`` in file order, ``rows`` the 1-based
    data row number of each record (header excluded), and the rows that could not be read.
    ``done`` of ``total`` is how far into the file the chunk ends (bytes read for CSV and JSON
    Lines, of the file as stored, compressed or not; records for Parquet)."""

    table: pa.Table
    rows: pa.Array
    format: str
    malformed: list[Malformed] = field(default_factory=list)
    done: int = 0
    total: int = 0

    @property
    def rows_read(self) -> int:
        return int(self.table.num_rows) + len(self.malformed)


def file_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``jsonl`` from the file name; a clear error otherwise."""
    name = path.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    raise InvalidInput(
        f"File {path} has an extension surmesure does not read.",
        hint="use .csv, .csv.gz, .parquet, .jsonl, .ndjson (optionally .gz)",
        field="FILE",
    )


def read_chunks(path: Path, rows: int = CHUNK_ROWS) -> Iterator[RawFile]:
    """The records of ``path``, ``rows`` at most a chunk, in file order. Raises
    :class:`InvalidInput` for a missing file at once, and for an unreadable one (not the
    format its name says, a header that is not UTF-8 text) when the chunk is reached."""
    if not path.is_file():
        raise InvalidInput(f"File {path} does not exist.", hint="check the path", field="FILE")
    if rows < 1:
        raise InvalidInput(f"Chunk size {rows} is not positive.", hint="use 1 or more rows")
    fmt = file_format(path)
    if fmt == "csv":  # a file refused as a whole is refused before its first chunk
        with _readable(path, fmt):
            _header(path)
    return _guarded(path, fmt, rows)


def read_file(path: Path) -> RawFile:
    """``path`` whole, as one :class:`RawFile` (small files; imports use :func:`read_chunks`)."""
    chunks = list(read_chunks(path, rows=1 << 62))
    if len(chunks) == 1:
        return chunks[0]
    return RawFile(
        pa.concat_tables([c.table for c in chunks], promote_options="permissive"),
        pa.concat_arrays([c.rows for c in chunks]),
        chunks[0].format,
        [m for c in chunks for m in c.malformed],
    )


def _guarded(path: Path, fmt: str, rows: int) -> Iterator[RawFile]:
    chunks = {"csv": _csv_chunks, "parquet": _parquet_chunks, "jsonl": _jsonl_chunks}[fmt]
    with _readable(path, fmt):
        yield from chunks(path, rows)


@contextmanager
def _readable(path: Path, fmt: str) -> Iterator[None]:
    try:
        yield
    except (pa.ArrowInvalid, OSError, UnicodeError, csv.Error) as exc:
        raise InvalidInput(
            f"File {path} cannot be read as {fmt}: {exc}",
            hint="check the file is complete, UTF-8 encoded, and in the format its name says",
            field="FILE",
        ) from exc


def _numbers(start: int, count: int) -> pa.Array:
    return pa.array(range(start, start + count), pa.int64())


def _open_text(path: Path) -> io.TextIOBase:
    # the rows after the header are read by Arrow: only the header must be UTF-8 here
    gz = path.name.lower().endswith(".gz")
    binary = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 (the caller closes)
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _header(path: Path) -> list[str]:
    with _open_text(path) as handle:
        header = next(csv.reader(handle), None)
    if header:
        "".join(header).encode("utf-8")  # UnicodeEncodeError: the header is not UTF-8
    if not header:
        raise InvalidInput(f"File {path} is empty.", hint="a CSV file starts with a header row")
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InvalidInput(
            f"File {path} repeats the column name(s) {', '.join(map(repr, dupes))}.",
            hint="give every column of the header a distinct name",
        )
    return header


class _Chunker:
    """Gathers tables of records (with their row numbers) and unreadable rows into chunks of
    exactly ``size`` records; the unreadable rows ride with the chunk they are gathered in."""

    def __init__(self, fmt: str, size: int, empty: pa.Table, total: int) -> None:
        self.fmt, self.size, self.empty, self.total = fmt, size, empty, total
        self.tables: list[pa.Table] = []
        self.numbers: list[pa.Array] = []
        self.malformed: list[Malformed] = []
        self.held = 0
        self.emitted = False

    def add(self, table: pa.Table, numbers: pa.Array, malformed: list[Malformed]) -> None:
        self.tables.append(table)
        self.numbers.append(numbers)
        self.malformed += malformed
        self.held += table.num_rows

    def ready(self, done: int) -> Iterator[RawFile]:
        while self.held >= self.size:
            yield self._take(self.size, done)

    def rest(self, done: int) -> Iterator[RawFile]:
        if self.held or self.malformed or not self.emitted:
            yield self._take(self.held, done)

    def _take(self, count: int, done: int) -> RawFile:
        if self.tables:
            table = pa.concat_tables(self.tables, promote_options="permissive").combine_chunks()
            numbers = pa.concat_arrays(self.numbers)
        else:
            table, numbers = self.empty, pa.array([], pa.int64())
        self.tables = [table.slice(count)] if count < table.num_rows else []
        self.numbers = [numbers.slice(count)] if count < table.num_rows else []
        self.held = table.num_rows - count
        malformed, self.malformed = self.malformed, []
        self.emitted = True
        chunk = table.slice(0, count)
        return RawFile(chunk, numbers.slice(0, count), self.fmt, malformed, done, self.total)


# -- CSV ------------------------------------------------------------------------------------------


def _raw_stream(path: Path) -> tuple[IO[bytes], Any]:
    """The file as stored (whose position says how far the reading is) and a stream of its
    bytes, decompressed when the name ends in ``.gz``."""
    raw = open(path, "rb")  # noqa: SIM115 (closed by the caller)
    if path.name.lower().endswith(".gz"):
        return raw, pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "gzip")
    return raw, raw


def _csv_chunks(path: Path, size: int) -> Iterator[RawFile]:
    header = _header(path)
    skipped: deque[Malformed] = deque()

    def on_invalid(row: Any) -> str:
        if row.number is None:  # (the serial reader numbers every row)
            raise pa.ArrowInvalid(f"a row has {row.actual_columns} cells, not {len(header)}")
        cells = next(csv.reader(io.StringIO(row.text)), [])
        reason = f"row has {len(cells)} cells, the header has {len(header)}"
        skipped.append(Malformed(row.number - 1, reason, {"cells": cells}))
        return "skip"

    empty = pa.table({name: pa.array([], pa.string()) for name in header})
    chunker = _Chunker("csv", size, empty, path.stat().st_size)
    raw, stream = _raw_stream(path)
    with raw:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.binary() for name in header},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
        cursor = 1
        for batch in reader:
            numbers, cursor, passed = _number_rows(batch.num_rows, cursor, skipped)
            table, numbers, unreadable = _as_text(pa.Table.from_batches([batch]), numbers)
            chunker.add(table, numbers, sorted([*passed, *unreadable], key=lambda m: m.row))
            yield from chunker.ready(raw.tell())
        chunker.add(empty, pa.array([], pa.int64()), list(skipped))
        yield from chunker.rest(raw.tell())


def _number_rows(
    count: int, cursor: int, skipped: deque[Malformed]
) -> tuple[pa.Array, int, list[Malformed]]:
    """Data row numbers of the next ``count`` records from row ``cursor``, stepping over the
    rows Arrow skipped (those come back too). Arrow reports a skipped row before it yields the
    batch the row was in, so every row a batch stepped over is known by then."""
    parts: list[range] = []
    passed: list[Malformed] = []
    left = count
    while left:
        while skipped and skipped[0].row == cursor:
            passed.append(skipped.popleft())
            cursor += 1
        stop = skipped[0].row if skipped else cursor + left
        take = min(left, stop - cursor)
        parts.append(range(cursor, cursor + take))
        cursor += take
        left -= take
    numbers = pa.array([n for part in parts for n in part], pa.int64())
    return numbers, cursor, passed


def _as_text(table: pa.Table, numbers: pa.Array) -> tuple[pa.Table, pa.Array, list[Malformed]]:
    """The cells as text; a row with a cell that is not UTF-8 comes back as malformed."""
    columns: list[pa.Array | pa.ChunkedArray] = []
    good: pa.Array | None = None
    for column in table.columns:
        try:
            columns.append(column.cast(pa.string()))
        except pa.ArrowInvalid:
            columns.append(column)
            valid = pa.array([v is None or _is_utf8(v) for v in column.to_pylist()])
            good = valid if good is None else pa.compute.and_(good, valid)
    if good is None:
        return pa.table(columns, names=table.column_names), numbers, []
    bad = pa.compute.invert(good)
    unreadable = [
        Malformed(
            number,
            "row is not UTF-8 text; save the file as UTF-8",
            {"cells": ["" if v is None else v.decode("utf-8", "replace") for v in cells.values()]},
        )
        for number, cells in zip(
            numbers.filter(bad).to_pylist(), table.filter(bad).to_pylist(), strict=True
        )
    ]
    kept = table.filter(good)
    text = pa.table([c.cast(pa.string()) for c in kept.columns], names=table.column_names)
    return text, numbers.filter(good), unreadable


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- Parquet --------------------------------------------------------------------------------------


def _parquet_chunks(path: Path, size: int) -> Iterator[RawFile]:
    parquet = pq.ParquetFile(path)
    total = parquet.metadata.num_rows
    chunker = _Chunker("parquet", size, parquet.schema_arrow.empty_table(), total)
    start = 1
    for batch in parquet.iter_batches(batch_size=min(size, 1 << 20)):
        chunker.add(pa.Table.from_batches([batch]), _numbers(start, batch.num_rows), [])
        start += batch.num_rows
        yield from chunker.ready(start - 1)
    yield from chunker.rest(total)


# -- JSON Lines -----------------------------------------------------------------------------------


def _jsonl_chunks(path: Path, size: int) -> Iterator[RawFile]:
    total = path.stat().st_size
    names: dict[str, None] = {}
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    malformed: list[Malformed] = []
    number = 0
    emitted = False

    def chunk(done: int) -> RawFile:
        table = table_from_records(records)
        missing = [n for n in names if n not in table.column_names]
        for name in missing:  # a column of an earlier chunk, absent from this one
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
        out = RawFile(table, pa.array(numbers, pa.int64()), "jsonl", list(malformed), done, total)
        names.update(dict.fromkeys(table.column_names))
        records.clear()
        numbers.clear()
        malformed.clear()
        return out

    raw = open(path, "rb")  # noqa: SIM115 (closed below)
    with raw, gzip.open(raw, "rb") if path.name.lower().endswith(".gz") else raw as handle:
        for line in handle:
            if not line.strip():
                continue
            number += 1
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                reason = f"line is not valid JSON ({exc})"
                malformed.append(Malformed(number, reason, {"text": text}))
                continue
            if not isinstance(record, dict):
                reason = "line is a JSON value but not an object"
                malformed.append(Malformed(number, reason, {"value": record}))
                continue
            records.append(record)
            numbers.append(number)
            if len(records) == size:
                emitted = True
                yield chunk(raw.tell())
        if records or malformed or not emitted:
            yield chunk(raw.tell())


def table_from_records(records: Iterable[dict[str, Any]]) -> pa.Table:
    """An Arrow table from JSON-like records (missing keys are nulls). A column keeps its type
    when its values agree (text, integer, number, boolean); otherwise, and for nested values,
    each value is written as its JSON text so nothing is lost."""
    rows = list(records)
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return pa.table({name: _column([row.get(name) for row in rows]) for name in names})


def _column(values: list[Any]) -> pa.Array:
    kinds = {_kind(v) for v in values if v is not None}
    if kinds == {"int", "float"}:
        kinds = {"float"}
    if len(kinds) == 1 and "json" not in kinds:
        kind = kinds.pop()
        arrow_type = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}.get(
            kind, pa.bool_()
        )
        try:
            return pa.array(values, arrow_type)
        except (pa.ArrowInvalid, OverflowError):
            pass
    if not kinds:
        return pa.array(values, pa.string())
    return pa.array(
        [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values],
        pa.string(),
    )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"
