"""Reading import files into Arrow tables, in file order.

Formats are chosen by extension: ``.csv`` and ``.csv.gz`` (UTF-8, header row), ``.parquet``,
and JSON Lines (``.jsonl`` / ``.ndjson``, optionally ``.gz``). CSV cells are read as text,
exactly as written (an empty cell is missing), so nothing is reinterpreted before validation;
Parquet keeps its own types; JSON Lines keep JSON's scalar types where a column is consistent.

A row that cannot be read as a record (a CSV row with the wrong number of cells, a JSON line
that is not an object) is not dropped: it comes back in :attr:`RawFile.malformed`, with its
1-based data row number, for the quarantine.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Malformed:
    """A row that is not a record: ``row`` is its 1-based data row, ``payload`` what was read."""

    row: int
    reason: str
    payload: dict[str, Any]


@dataclass
class RawFile:
    """The records of a file as read: ``table`` in file order, ``rows`` the 1-based data row
    number of each record (header excluded), and the rows that could not be read."""

    table: pa.Table
    rows: pa.Array
    format: str
    malformed: list[Malformed] = field(default_factory=list)

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


def read_file(path: Path) -> RawFile:
    """Read ``path`` whole. Raises :class:`InvalidInput` for a missing or unreadable file."""
    if not path.is_file():
        raise InvalidInput(f"File {path} does not exist.", hint="check the path", field="FILE")
    fmt = file_format(path)
    try:
        if fmt == "csv":
            return _read_csv(path)
        if fmt == "parquet":
            table = pq.read_table(path)
            return RawFile(table, _numbers(1, table.num_rows), fmt)
        return _read_jsonl(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(
            f"File {path} cannot be read as {fmt}: {exc}",
            hint="check the file is complete, UTF-8 encoded, and in the format its name says",
            field="FILE",
        ) from exc


def _numbers(start: int, count: int) -> pa.Array:
    return pa.array(range(start, start + count), pa.int64())


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _header(path: Path) -> list[str]:
    with _open_text(path) as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise InvalidInput(f"File {path} is empty.", hint="a CSV file starts with a header row")
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InvalidInput(
            f"File {path} repeats the column name(s) {', '.join(map(repr, dupes))}.",
            hint="give every column of the header a distinct name",
        )
    return header


def _read_csv(path: Path) -> RawFile:
    header = _header(path)
    ragged: list[int] = []

    def on_invalid(_row: Any) -> str:
        ragged.append(1)
        return "skip"

    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=True),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        ),
    )
    if not ragged:
        return RawFile(table, _numbers(1, table.num_rows), "csv")
    # Arrow does not say where a ragged row was; the csv module does, row by row.
    return _read_csv_rows(path, header)


def _read_csv_rows(path: Path, header: list[str]) -> RawFile:
    columns: list[list[str | None]] = [[] for _ in header]
    numbers: list[int] = []
    malformed: list[Malformed] = []
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        next(reader)
        for number, cells in enumerate(reader, start=1):
            if len(cells) != len(header):
                malformed.append(
                    Malformed(
                        number,
                        f"row has {len(cells)} cells, the header has {len(header)}",
                        {"cells": cells},
                    )
                )
                continue
            numbers.append(number)
            for column, cell in zip(columns, cells, strict=True):
                column.append(cell if cell != "" else None)
    table = pa.table(
        {name: pa.array(col, pa.string()) for name, col in zip(header, columns, strict=True)}
    )
    return RawFile(table, pa.array(numbers, pa.int64()), "csv", malformed)


def _jsonl_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        yield from handle


def _read_jsonl(path: Path) -> RawFile:
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    malformed: list[Malformed] = []
    number = 0
    for line in _jsonl_lines(path):
        if not line.strip():
            continue
        number += 1
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            malformed.append(Malformed(number, f"line is not valid JSON ({exc})", {"text": text}))
            continue
        if not isinstance(record, dict):
            malformed.append(
                Malformed(number, "line is a JSON value but not an object", {"value": record})
            )
            continue
        records.append(record)
        numbers.append(number)
    return RawFile(table_from_records(records), pa.array(numbers, pa.int64()), "jsonl", malformed)


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
