"""Export the latest derived metrics: one row per person, Parquet or CSV by file extension."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from surmesure.derive.source import ibis_backend
from surmesure.errors import InvalidInput, NotFound
from surmesure.store import schema
from surmesure.store.engine import Store

FORMATS = {".parquet": "parquet", ".csv": "csv"}
# the table's columns in export order: who, RFM, CLV, then the run
COLUMNS = [c.name for c in schema.derived_metrics.columns if c.name not in ("computed_on",)]


def format_of(path: Path) -> str:
    """``parquet`` or ``csv`` from the file name; anything else is refused."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"Cannot export to {path.name!r}: unknown file extension {path.suffix!r}.",
            hint="name the file .parquet or .csv",
            field="file",
        )
    return fmt


def latest(store: Store) -> pa.Table:
    """The rows of the latest day of computation, ordered by ``person_id``."""
    with ibis_backend(store) as backend:
        table = backend.table(schema.derived_metrics.name)
        last = table.filter(table.computed_on == table.computed_on.max())
        data = last.select(*COLUMNS).order_by("person_id").to_pyarrow()
    if data.num_rows == 0:
        raise NotFound("No derived metrics are stored yet.", hint="run surmesure derive first")
    return data


def export_derived(store: Store, path: Path) -> int:
    """Write the latest derived metrics to ``path``; returns the number of rows."""
    fmt = format_of(path)
    data = latest(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(data, path)
    else:
        pacsv.write_csv(data, path)
    return int(data.num_rows)
