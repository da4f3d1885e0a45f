"""What comes back from a call centre or a printer, as CSV files: read row by row, each bad
row set aside in the quarantine with its reason, the good ones recorded.

A row is parsed by the caller's function, which raises :class:`RowError` naming the field and
the fix; the row then goes to the quarantine (``origin`` ``import``, its ``kind``, ``row N``
for the 1-based data row, the file's name), the rest of the file is recorded. Quarantining is
idempotent: the same file imported twice quarantines its bad rows once.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from surmesure.collect import quarantine
from surmesure.errors import InvalidInput
from surmesure.store.engine import Store

T = TypeVar("T")


class RowError(Exception):
    """A row that cannot be recorded: the field, its value and why."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.field, self.value, self.reason = field, value, reason


@dataclass
class Read:
    """The rows of a file: parsed (with their row number and the row as read), and set
    aside."""

    good: list[tuple[int, dict[str, str], Any]]
    bad: list[quarantine.Item]


def read_rows(path: Path, required: Sequence[str], parse: Callable[[dict[str, str]], T]) -> Read:
    """Every data row of the CSV ``path`` through ``parse``; :class:`InvalidInput` when the
    file cannot be read or lacks a ``required`` column (nothing is recorded then)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in required if c not in columns]
            if missing:
                raise InvalidInput(
                    f"{path.name} has no column {missing[0]!r}.",
                    field=missing[0],
                    hint="the first line names the columns: " + ", ".join(required),
                )
            rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in reader]
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"Cannot read {path} ({exc}).", field="FILE", hint="give a UTF-8 CSV file"
        ) from exc
    return parse_rows(rows, parse)


def parse_rows(
    rows: Sequence[dict[str, str]], parse: Callable[[dict[str, str]], T], first: int = 2
) -> Read:
    """Each row through ``parse``, numbered from ``first`` (a file's first data row is its
    line 2; rows sent over HTTP count from 1)."""
    out = Read([], [])
    for n, row in enumerate(rows, start=first):
        try:
            out.good.append((n, row, parse(row)))
        except RowError as e:
            value = None if e.value is None else str(e.value)[:200]
            out.bad.append(quarantine.Item(f"row {n}", e.field, value, e.reason, row))
    return out


def set_aside(
    store: Store,
    conn: Connection,
    items: list[quarantine.Item],
    kind: str,
    source_name: str,
    now: datetime,
    origin: str = "import",
) -> int:
    """Quarantine the bad rows (see the module) under ``source_name`` (the file's name, or
    ``api`` with ``origin`` ``api``); how many were new."""
    return quarantine.add(
        store,
        conn,
        items,
        run_id=None,
        origin=origin,
        kind=kind,
        source_name=source_name,
        now=now,
    )


def refuse(read: Read, n: int, row: dict[str, str], field: str, value: Any, why: str) -> None:
    """Set row ``n`` aside after a check against the store."""
    read.bad.append(
        quarantine.Item(f"row {n}", field, None if value is None else str(value), why, row)
    )


def when(row: dict[str, str], field: str, default: datetime) -> datetime:
    """The ISO date-time in ``field`` as naive UTC (``default`` when empty)."""
    text = row.get(field, "").strip()
    if not text:
        return default
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(
            field, text, f"{field}: not a date-time; write ISO 8601 such as 2026-03-01T14:30:00"
        ) from None
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
