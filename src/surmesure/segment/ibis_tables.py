"""The store's tables as the Ibis segment compiler reads them, on the store or on Spark.

The compiler (:mod:`surmesure.segment.ibis_compile`) never reads JSON: JSON is what engines
disagree on (DuckDB and PostgreSQL type it, Spark holds text and would need a Python UDF to
tell the string ``"34"`` from the number ``34``). So each JSON value a segment compares (a
trait's value, the event properties a definition names) is read once, on the store, into four
typed columns with the meaning of :mod:`surmesure.segment.dialect`:

    ``<prefix>_text``    the string, when the JSON value is a string, else NULL
    ``<prefix>_number``  the double, when it is a number, else NULL
    ``<prefix>_flag``    the boolean, when it is a boolean, else NULL
    ``<prefix>_held``    true when it is present: neither SQL NULL nor JSON ``null``

On DuckDB and PostgreSQL these columns are computed in the query itself; for Spark the same
expressions are written to Parquet (:func:`export_parquet`) and Spark reads the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow.parquet as pq

from surmesure.domain.segments import (
    AllNode,
    AnyNode,
    Condition,
    EventNode,
    NotNode,
    SegmentDefinition,
)

TABLES = (
    "people",
    "traits",
    "events",
    "orders",
    "order_lines",
    "products",
    "stores",
    "consents",
    "derived_metrics",
)


@dataclass(frozen=True)
class Tables:
    """Ibis tables named as in the store; ``traits`` and ``events`` typed (see the module),
    events with one group of typed columns per property key of ``keys``
    (``p0_text`` ... for ``keys[0]``)."""

    backend: Any
    keys: tuple[str, ...]
    tables: Mapping[str, ir.Table]

    def __getitem__(self, name: str) -> ir.Table:
        return self.tables[name]

    def prop(self, key: str) -> str:
        """The prefix of the typed columns of property ``key`` in ``events``."""
        return f"p{self.keys.index(key)}"


def property_keys(definitions: Iterable[SegmentDefinition]) -> tuple[str, ...]:
    """Every event property key the definitions compare, sorted."""
    found: set[str] = set()

    def walk(node: Condition) -> None:
        match node:
            case AllNode(all=items) | AnyNode(any=items):
                for item in items:
                    walk(item)
            case NotNode(not_=inner):
                walk(inner)
            case EventNode(event=c):
                found.update(c.properties)

    for definition in definitions:
        walk(definition.where)
    return tuple(sorted(found))


def typed(value: Any, prefix: str) -> dict[str, ir.Value]:
    """The four typed columns of a JSON ``value`` (see the module)."""
    return {
        f"{prefix}_text": value.str,
        f"{prefix}_number": value.float,
        f"{prefix}_flag": value.bool,
        f"{prefix}_held": value.cast("string").fill_null("null") != "null",
    }


def store_tables(backend: Any, keys: tuple[str, ...]) -> Tables:
    """The compiler's tables over a store's Ibis backend (DuckDB or PostgreSQL)."""
    raw = {name: backend.table(name) for name in TABLES}
    t = raw["traits"]
    traits = t.select(
        "person_id",
        "name",
        "source",
        "observed_at",
        "reliability",
        sealed=t.sealed.notnull(),
        **typed(t.value, "value"),
    )
    e = raw["events"]
    props = {}
    for i, key in enumerate(keys):
        props.update(typed(e.properties[key], f"p{i}"))
    events = e.select("person_id", "type", "event", "occurred_at", **props)
    return Tables(backend, keys, {**raw, "traits": traits, "events": events})


def export_parquet(tables: Tables, folder: Path) -> dict[str, int]:
    """Write every table of ``tables`` to ``folder/<name>.parquet``; returns rows per table."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in TABLES:
        path = folder / f"{name}.parquet"
        tables.backend.to_parquet(tables[name], path)
        written[name] = pq.read_metadata(path).num_rows
    return written


def spark_tables(session: Any, folder: Path, keys: tuple[str, ...]) -> Tables:
    """The compiler's tables on a Spark session, read from :func:`export_parquet`'s files
    (registered as temporary views of the same names)."""
    backend = ibis.pyspark.connect(session)
    for name in TABLES:
        session.read.parquet(str(folder / f"{name}.parquet")).createOrReplaceTempView(name)
    return Tables(backend, keys, {name: backend.table(name) for name in TABLES})
