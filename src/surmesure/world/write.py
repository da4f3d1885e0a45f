"""Writing the world's files: CSV (optionally gzip) in chunks, JSON Lines, the manifest.

Output is byte-for-byte reproducible: Arrow writes the cells, gzip headers carry no time, and
nothing depends on the machine or the clock.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

MANIFEST = "manifest.json"


class CsvFile:
    """A CSV file written table by table; the header comes from the first table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._raw: BinaryIO = path.open("wb")
        self._out: BinaryIO | gzip.GzipFile = self._raw
        if path.name.endswith(".gz"):
            self._out = gzip.GzipFile(
                filename="", fileobj=self._raw, mode="wb", compresslevel=4, mtime=0
            )
        self._header = False

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()

    def _table(self, table: pa.Table) -> None:
        if table.num_rows == 0 and self._header:
            return
        sink = io.BytesIO()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=not self._header))
        self._header = True
        self._out.write(sink.getvalue())

    def write(
        self, table: pa.Table, before: np.ndarray | None = None, lines: Sequence[bytes] = ()
    ) -> None:
        """Write ``table``, with each of ``lines`` (CSV text) before the row ``before[i]``."""
        if not self._header:
            self._table(table.slice(0, 0))
        done = 0
        for at, line in zip([] if before is None else before.tolist(), lines, strict=True):
            if at > done:
                self._table(table.slice(done, at - done))
                done = at
            self._out.write(line)
        self._table(table.slice(done))
        self.rows += table.num_rows + len(lines)


def write_lines(path: Path, chunks: Iterable[pa.Array]) -> int:
    """Write text lines, each already ending with a newline, straight from Arrow's buffers;
    returns how many."""
    count = 0
    with path.open("wb") as out:
        for chunk in chunks:
            array = chunk.cast(pa.large_string())
            offsets = np.frombuffer(array.buffers()[1], np.int64)
            first, last = offsets[array.offset], offsets[array.offset + len(array)]
            out.write(memoryview(array.buffers()[2])[first:last])
            count += len(array)
    return count


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_bytes(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of the world in ``folder``, or ``None`` when there is none (or it is not
    readable JSON)."""
    try:
        data = orjson.loads((folder / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
