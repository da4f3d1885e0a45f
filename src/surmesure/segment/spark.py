"""Segments on Apache Spark: the Ibis interpreter on a Spark session fed with the store's tables.

The tables a segment reads (:data:`surmesure.segment.ibis_tables.TABLES`) are written to
Parquet from the store, with JSON already typed (the event properties the definition names
included), then read by Spark, which evaluates :func:`surmesure.segment.ibis_compile.members`.
Files already in that layout (written by :func:`export_parquet` on a schedule, or by a lake's
own jobs) are read in place: point :func:`size_in` at their folder. Needs the ``spark`` extra
(PySpark and Java 17), like :mod:`surmesure.derive.spark`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from surmesure.derive.source import ibis_backend
from surmesure.domain.segments import SegmentDefinition
from surmesure.segment.definitions import closure
from surmesure.segment.ibis_compile import members
from surmesure.segment.ibis_tables import export_parquet, property_keys, spark_tables, store_tables
from surmesure.store.engine import Store


def export_for(
    store: Store,
    definition: SegmentDefinition,
    catalog: Mapping[str, SegmentDefinition],
    folder: Path,
) -> tuple[str, ...]:
    """Write the store's tables for ``definition`` to ``folder``; returns the event property
    keys typed in them."""
    keys = property_keys(closure(definition, catalog).values())
    with ibis_backend(store) as backend:
        export_parquet(store_tables(backend, keys), folder)
    return keys


def size_in(
    session: Any,
    folder: Path,
    keys: tuple[str, ...],
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
    half_life_days: float,
) -> int:
    """How many current persons are in ``definition`` at ``now``, evaluated by Spark on the
    Parquet tables in ``folder``."""
    tables = spark_tables(session, folder, keys)
    query = members(definition, tables, now=now, half_life_days=half_life_days, catalog=catalog)
    return int(query.count().to_pyarrow().as_py())


def size(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
    half_life_days: float,
) -> int:
    """:func:`surmesure.segment.membership.size` computed on a local Spark session (the one
    already running in the process, if any)."""
    from surmesure.derive.spark import local_session

    with tempfile.TemporaryDirectory(prefix="surmesure-segment-") as tmp:
        folder = Path(tmp)
        keys = export_for(store, definition, catalog, folder)
        session = local_session()
        return size_in(session, folder, keys, definition, now, catalog, half_life_days)
