"""Where every collected record lands: attached to a person, then written idempotently.

File imports and the HTTP collector both end here, so a record means the same thing whichever
way it came in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.collect.records import IDENTIFIER_FIELDS
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.graph import Conflict, Identifier, Merge
from surmesure.unify.resolver import resolve
from surmesure.unify.trust import claimed


@dataclass
class Attached:
    """Rows with ``person_id``, ``node_id`` and ``owned`` (see
    :class:`~surmesure.unify.resolver.Resolution`) added, and what resolving them changed."""

    rows: pa.Table
    new_people: int = 0
    merges: list[Merge] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def record_key(*parts: object) -> str:
    """A stable 32-hex key for a record, from the parts that make it itself."""
    return hashlib.blake2b(orjson.dumps(parts, default=str), digest_size=16).hexdigest()


def to_json(value: object) -> str:
    return orjson.dumps(value, default=str).decode()


def identifiers_of(data: pa.Table) -> list[tuple[Identifier, ...]]:
    """Per row, its (kind, value) identifiers from the identifier columns present."""
    columns = [
        (kind, data.column(kind).to_pylist())
        for kind in IDENTIFIER_FIELDS
        if kind in data.column_names
    ]
    if not columns:
        return [()] * data.num_rows
    out: list[tuple[Identifier, ...]] = []
    for values in zip(*(vals for _, vals in columns), strict=True):
        out.append(
            tuple((kind, v) for (kind, _), v in zip(columns, values, strict=True) if v is not None)
        )
    return out


def attach(
    store: Store,
    conn: Connection,
    data: pa.Table,
    *,
    source: str,
    now: datetime,
    refs: Sequence[str] | None = None,
    trusted: bool = True,
) -> Attached:
    """Resolve the person of each row of ``data`` from its (already normalized) identifier
    columns and return the rows with ``person_id`` and ``node_id`` appended. Rows sharing the
    same identifiers are resolved once. ``refs`` name each row in merge evidence. Rows of a
    source that is not ``trusted`` only claim their identifiers but anonymous ids (a file holds
    no verification hash)."""
    per_row = identifiers_of(data)
    index: dict[tuple[Identifier, ...], int] = {}
    distinct: list[tuple[str, Sequence[Identifier]]] = []
    positions: list[int] = []
    for row, ids in enumerate(per_row):
        slot = index.get(ids)
        if slot is None:
            slot = index[ids] = len(distinct)
            distinct.append((refs[row] if refs is not None else f"row {row + 1}", ids))
        positions.append(slot)
    resolution = resolve(
        store,
        conn,
        distinct,
        source=source,
        now=now,
        trusted=trusted,
        claimed=None if trusted else [claimed(ids, trusted=False) for _, ids in distinct],
    )
    people = pa.array([resolution.people[p] for p in positions], pa.int64())
    nodes = pa.array([resolution.nodes[p] for p in positions], pa.int64())
    owned = pa.array([resolution.owned[p] for p in positions], pa.bool_())
    rows = (
        data.append_column("person_id", people)
        .append_column("node_id", nodes)
        .append_column("owned", owned)
    )
    return Attached(rows, resolution.new_people, resolution.merges, resolution.conflicts)


def write(store: Store, conn: Connection, table: sa.Table, rows: pa.Table) -> int:
    """Insert the columns of ``rows`` that ``table`` has; rows already stored are skipped.
    Returns how many were new."""
    keep = [c for c in rows.column_names if c in table.c]
    return store.bulk_insert(conn, table, rows.select(keep))


def write_traits(
    store: Store,
    conn: Connection,
    *,
    record_keys: Sequence[str],
    person_ids: Sequence[int | None],
    node_ids: Sequence[int | None],
    traits: Sequence[dict[str, object]],
    sources: Sequence[str],
    observed_at: Sequence[datetime],
    reliabilities: Sequence[float],
) -> int:
    """Write one trait observation per (record, trait name) with a value; ``None`` values are
    not observations and are skipped. The values of sealed traits are sealed under the node
    (:mod:`surmesure.protect.atrest`). Returns how many observations were new."""
    cols: dict[str, list[object]] = {
        k: []
        for k in (
            "record_key",
            "name",
            "person_id",
            "node_id",
            "value",
            "source",
            "observed_at",
            "reliability",
        )
    }
    sealed_names = store.settings.sealed_traits
    nodes: list[int | None] = []
    hidden: list[str | None] = []
    for i, values in enumerate(traits):
        for name, value in values.items():
            if value is None or person_ids[i] is None:
                continue
            cols["record_key"].append(record_keys[i])
            cols["name"].append(name)
            cols["person_id"].append(person_ids[i])
            cols["node_id"].append(node_ids[i])
            nodes.append(node_ids[i])
            text = to_json(value)
            sealed = name in sealed_names and node_ids[i] is not None
            cols["value"].append(None if sealed else text)
            hidden.append(text if sealed else None)
            cols["source"].append(sources[i])
            cols["observed_at"].append(observed_at[i])
            cols["reliability"].append(reliabilities[i])
    table = pa.table(
        {
            "record_key": pa.array(cols["record_key"], pa.string()),
            "name": pa.array(cols["name"], pa.string()),
            "person_id": pa.array(cols["person_id"], pa.int64()),
            "node_id": pa.array(cols["node_id"], pa.int64()),
            "value": pa.array(cols["value"], pa.string()),
            "source": pa.array(cols["source"], pa.string()),
            "observed_at": pa.array(cols["observed_at"], pa.timestamp("us")),
            "reliability": pa.array(cols["reliability"], pa.float64()),
            "sealed": pa.array(
                atrest.seal_texts(conn, nodes, hidden, now=datetime.now(UTC).replace(tzinfo=None)),
                pa.binary(),
            ),
        }
    )
    return store.bulk_insert(conn, schema.traits, table)
