"""What the demo-world tests share: a small world, and its import into a real DuckDB store."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

SMALL = 1_500


def count_rows(path: Path) -> int:
    """Data rows of a CSV (header excluded) or lines of a JSON Lines file."""
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        if path.name.endswith(".jsonl"):
            return sum(1 for _ in handle)
        return sum(1 for _ in csv.reader(handle)) - 1


def csv_source(path: Path) -> str:
    """A DuckDB table function reading the CSV ``path`` as text (ragged rows skipped)."""
    quoted = str(path).replace("'", "''")
    return f"read_csv('{quoted}', all_varchar = true, ignore_errors = true)"
