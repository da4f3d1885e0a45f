"""Segments on Apache Spark: the Ibis interpreter on a Spark session fed with the store's tables.

The tables a segment reads (:data:`surmesure.segment.ibis_tables.TABLES`) are written to
Parquet from the store, with JSON already typed (the event properties the definition names
included), then read by Spark, which evaluates :func:`surmesure.segment.ibis_compile.members`.
Files already in that layout (written by :func:`export_parquet` on a schedule, or by a lake's
own jobs) are read in place: point :func:`size_in` at their folder. Needs the ``spark`` extra
(PySpark and Java 17), like :mod:`surmesure.derive.spark`.

The session runs on ``Settings.spark_master`` (``local``: one thread in this process; a
cluster's URL), and the Parquet files go to ``Settings.spark_dir`` (default: a temporary
folder), which a cluster's workers must be able to read. What ``segment size``, ``preview``
and ``overlap`` print is the same on either engine: only the membership is evaluated by Spark;
the values a preview shows of its few members are read from the store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from surmesure.derive.source import ibis_backend
from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment.definitions import closure
from surmesure.segment.ibis_compile import members
from surmesure.segment.ibis_tables import (
    Tables,
    export_parquet,
    property_keys,
    spark_tables,
    store_tables,
)
from surmesure.store.engine import Store


def export_for(
    store: Store,
    definitions: Sequence[SegmentDefinition],
    catalog: Mapping[str, SegmentDefinition],
    folder: Path,
) -> tuple[str, ...]:
    """Write the store's tables for ``definitions`` to ``folder``; returns the event property
    keys typed in them."""
    keys = property_keys(d for w in definitions for d in closure(w, catalog).values())
    with ibis_backend(store) as backend:
        export_parquet(store_tables(backend, keys), folder)
    return keys


@dataclass(frozen=True)
class Evaluation:
    """When and against what a segment is evaluated: ``now``, the trait half-life, the saved
    segments it may refer to, the store's blind-index key."""

    now: datetime
    half_life_days: float
    catalog: Mapping[str, SegmentDefinition]
    index_key: bytes

    @classmethod
    def of(
        cls, store: Store, now: datetime, catalog: Mapping[str, SegmentDefinition]
    ) -> Evaluation:
        """An evaluation at ``now`` under ``store``'s settings."""
        return cls(now, store.settings.trait_half_life_days, catalog, blind.index_key(store))


def size_in(
    session: Any, folder: Path, keys: tuple[str, ...], definition: SegmentDefinition, at: Evaluation
) -> int:
    """How many current persons are in ``definition``, evaluated by Spark on the Parquet
    tables in ``folder`` (with the event property ``keys`` typed in them)."""
    return count_in(spark_tables(session, folder, keys), definition, at)


def _members(tables: Tables, definition: SegmentDefinition, at: Evaluation) -> Any:
    return members(
        definition,
        tables,
        now=at.now,
        half_life_days=at.half_life_days,
        catalog=at.catalog,
        index_key=at.index_key,
    )


def count_in(tables: Tables, definition: SegmentDefinition, at: Evaluation) -> int:
    """How many current persons are in ``definition``."""
    return int(_members(tables, definition, at).count().to_pyarrow().as_py())


def sample_in(
    tables: Tables, definition: SegmentDefinition, at: Evaluation, limit: int
) -> list[int]:
    """The ``limit`` smallest ids of the current persons in ``definition``."""
    ids = (
        _members(tables, definition, at)
        .order_by("person_id")
        .limit(limit)
        .to_pyarrow()
        .column("person_id")
    )
    return [int(i) for i in ids.to_pylist()]


def overlap_in(
    tables: Tables, definitions: Sequence[SegmentDefinition], at: Evaluation
) -> list[list[int]]:
    """``matrix[i][j]`` = current persons in both ``definitions[i]`` and ``[j]`` (the diagonal
    is each size), in one Spark job: the members of every segment tagged with its place, joined
    with themselves on the person and counted per pair of places."""
    import ibis

    tagged = ibis.union(
        *(
            _members(tables, d, at).mutate(place=ibis.literal(i, "int64"))
            for i, d in enumerate(definitions)
        ),
        distinct=False,
    )
    other = tagged.rename(other_person="person_id", other_place="place")
    pairs = (
        tagged.join(other, tagged.person_id == other.other_person)
        .group_by(["place", "other_place"])
        .aggregate(people=lambda t: t.count())
        .to_pyarrow()
    )
    matrix = [[0] * len(definitions) for _ in definitions]
    for i, j, n in zip(*(pairs.column(c).to_pylist() for c in pairs.column_names), strict=True):
        matrix[int(i)][int(j)] = int(n)
    return matrix


@contextmanager
def on_spark(
    store: Store,
    definitions: Sequence[SegmentDefinition],
    catalog: Mapping[str, SegmentDefinition],
) -> Iterator[Tables]:
    """The compiler's tables on the Spark session of the store's settings (the one already
    running in the process, if any), the store's tables for ``definitions`` written first to a
    folder of ``Settings.spark_dir`` (removed after)."""
    from surmesure.derive.spark import local_session

    settings = store.settings
    if settings.spark_dir is not None:
        settings.spark_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="surmesure-segment-", dir=settings.spark_dir) as tmp:
        folder = Path(tmp)
        keys = export_for(store, definitions, catalog, folder)
        session = local_session(master=settings.spark_master)
        yield spark_tables(session, folder, keys)


def size(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
) -> int:
    """:func:`surmesure.segment.membership.size` computed on Spark."""
    at = Evaluation.of(store, now, catalog)
    with on_spark(store, [definition], catalog) as tables:
        return count_in(tables, definition, at)


def sample(
    store: Store,
    definition: SegmentDefinition,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
    limit: int,
) -> list[int]:
    """The members :func:`surmesure.segment.reports.preview` shows (the ``limit`` smallest
    ids), found by Spark."""
    at = Evaluation.of(store, now, catalog)
    with on_spark(store, [definition], catalog) as tables:
        return sample_in(tables, definition, at, limit)


def overlap(
    store: Store,
    definitions: Sequence[SegmentDefinition],
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
) -> list[list[int]]:
    """:func:`surmesure.segment.membership.overlap` computed on Spark."""
    at = Evaluation.of(store, now, catalog)
    with on_spark(store, definitions, catalog) as tables:
        return overlap_in(tables, definitions, at)
