"""A real slice of Online Retail II in a DuckDB store: the orders of one customer in
``every`` (by the customer id's low bits) before ``before``."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from conftest import dataset
from surmesure.collect.importer import import_file
from surmesure.store import Store, open_store


def retail_slice(folder: Path, every: int, before: str) -> Store:
    """The store (the caller disposes of it); ``every`` a power of two."""
    table = pq.read_table(dataset("online_retail_II/online_retail_II_2009_2010.parquet"))
    customer = pc.fill_null(table["Customer ID"], 1)
    keep = pc.and_(
        pc.equal(pc.bit_wise_and(customer, every - 1), 0),
        pc.less(table["InvoiceDate"], before),
    )
    path = folder / "slice.parquet"
    pq.write_table(table.filter(keep), path)
    store = open_store(f"duckdb:///{folder / 'slice.duckdb'}")
    import_file(store, "orders", path, preset="online-retail")
    return store
