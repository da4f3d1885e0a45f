"""Export of everything held about one person (the right of access and to portability).

Driven by the ``info["personal"]`` tags (see :mod:`surmesure.protect.scope`), so a table added
with a tag is exported with no change here. The document is JSON: one list of rows per table
that holds something about the person, dates in ISO 8601, JSON columns decoded, sealed
values opened (:mod:`surmesure.protect.atrest`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.protect import atrest, blind, scope
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import Person, decode_json, find_person, identifier_values


@dataclass
class Export:
    """The person, when the export was made (naive UTC), and its rows by table."""

    person_id: int
    nodes: list[int]
    exported_at: datetime
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.tables.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "nodes": self.nodes,
            "exported_at": self.exported_at,
            "tables": self.tables,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), default=str, option=orjson.OPT_INDENT_2)


def personal_rows(
    store: Store, conn: Connection, person: Person, region: str
) -> dict[str, list[dict[str, Any]]]:
    """Every personal table's rows about ``person``, by table name (tables with none left out),
    identifier values opened (:mod:`surmesure.protect.blind`)."""
    identifiers = identifier_values(store, conn, person)
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in schema.personal_tables():
        if scope.tag_of(table) == scope.PAYLOAD:
            keys = scope.payload_matches(conn, table, identifiers, region)
            clause = scope.key_clause(table, keys) if keys else None
        else:
            clause = scope.person_clause(table, person.nodes)
        if clause is None:
            continue
        query = sa.select(table).where(clause).order_by(*table.primary_key.columns)
        rows = [_plain(table, r._mapping) for r in conn.execute(query)]
        atrest.open_rows(conn, table, rows)
        if rows:
            tables[str(table.name)] = blind.reveal(store, conn, table, rows, identifiers)
    return tables


def _plain(table: sa.Table, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        column = table.c[str(key)]
        out[str(key)] = decode_json(value) if isinstance(column.type, sa.JSON) else value
    return out


def export_person(store: Store, ref: str, *, out: Path | None = None) -> Export:
    """Everything held about the person ``ref`` names; written to ``out`` when given."""
    region = store.settings.default_country
    with store.connect() as conn:
        person = find_person(conn, ref)
        tables = personal_rows(store, conn, person, region)
    export = Export(
        person.person_id,
        list(person.nodes),
        datetime.now(UTC).replace(tzinfo=None),
        tables,
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(export.to_json())
    return export
