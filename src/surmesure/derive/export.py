"""Export the latest derived metrics: one row per person, Parquet or CSV by file extension."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from surmesure.derive.source import ibis_backend
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import blind
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
    return _customer_ids_opened(store, data)


def _customer_ids_opened(store: Store, data: pa.Table) -> pa.Table:
    """``data`` with each ``customer_id`` (a blind index) as the customer id it indexes,
    opened from the identifiers (one batch); empty where nobody holds it any more."""
    stored = data.column("customer_id").to_pylist()
    kind = blind.USER_ID_KIND
    with store.connect() as conn:
        values = blind.open_values(store, conn, [(kind, i) for i in stored if i is not None])
    opened = [None if i is None else values.get((kind, i)) for i in stored]
    position = data.column_names.index("customer_id")
    return data.set_column(position, "customer_id", pa.array(opened, pa.string()))


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
