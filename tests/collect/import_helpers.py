"""Writing small import files in every supported format, and reading the store back."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from surmesure.store import Store

FORMATS = ("csv", "csv.gz", "parquet", "jsonl", "jsonl.gz")


def write_file(directory: Path, name: str, fmt: str, rows: list[dict[str, Any]]) -> Path:
    """``rows`` written as ``directory/name.fmt``. CSV cells are text (None is an empty
    cell); Parquet and JSON Lines keep the Python types."""
    path = directory / f"{name}.{fmt}"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if fmt.startswith("csv"):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        data = buffer.getvalue().encode()
    elif fmt == "parquet":
        pq.write_table(pa.table({c: [row.get(c) for row in rows] for c in columns}), path)
        return path
    else:
        data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    path.write_bytes(gzip.compress(data) if fmt.endswith(".gz") else data)
    return path


def rows(store: Store, query: str, **params: Any) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(query), params)]


def scalar(store: Store, query: str, **params: Any) -> Any:
    with store.connect() as conn:
        return conn.execute(sa.text(query), params).scalar_one()


def count(store: Store, table: str) -> int:
    return int(scalar(store, f"SELECT count(*) FROM {table}"))


def quarantined(store: Store, where: str = "TRUE", **params: Any) -> list[dict[str, Any]]:
    """The quarantine's records matching ``where``, by id, as readers see them: value and
    payload opened from their sealed copy."""
    from conftest import opened_rows

    found = opened_rows(store, "quarantine", where, **params)
    return sorted(found, key=lambda r: int(r["quarantine_id"]))
