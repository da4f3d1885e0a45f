"""Saved segments: every definition kept as a version, the latest in force.

Saving checks the definition against the segments already saved (unknown references, cycles)
and writes nothing when it is refused. Saving an unchanged definition adds no version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.segments import SegmentDefinition
from surmesure.errors import NotFound
from surmesure.segment.definitions import check_references, check_sealed
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.versions import add_version
from surmesure.unify.profile import decode_json


@dataclass(frozen=True)
class Saved:
    name: str
    version: int
    changed: bool


def catalog(conn: Connection) -> dict[str, SegmentDefinition]:
    """Every saved segment in its current version, by name."""
    s, v = schema.segments, schema.segment_versions
    rows = conn.execute(
        sa.select(s.c.name, v.c.definition).select_from(
            s.join(v, sa.and_(v.c.name == s.c.name, v.c.version == s.c.version))
        )
    )
    return {str(r.name): SegmentDefinition.model_validate(decode_json(r.definition)) for r in rows}


def get(conn: Connection, name: str) -> SegmentDefinition:
    found = catalog(conn).get(name)
    if found is None:
        raise NotFound(
            f"There is no segment {name!r}.",
            hint="`surmesure segment save FILE` saves one; check the name",
            field="NAME",
        )
    return found


def history(conn: Connection, name: str) -> list[dict[str, Any]]:
    """Every version of ``name``, oldest first: version, created_at, definition."""
    v = schema.segment_versions
    rows = conn.execute(
        sa.select(v.c.version, v.c.created_at, v.c.definition)
        .where(v.c.name == name)
        .order_by(v.c.version)
    )
    return [
        {"version": r.version, "created_at": r.created_at, "definition": decode_json(r.definition)}
        for r in rows
    ]


def save(store: Store, definition: SegmentDefinition, now: datetime) -> Saved:
    """Validate against the saved segments and store ``definition`` as a new version when it
    differs from the current one. All or nothing."""
    s, v = schema.segments, schema.segment_versions
    with store.begin() as conn:
        known = catalog(conn)
        check_references(definition, known)
        check_sealed(definition, store.settings.sealed_traits)
        current = conn.execute(sa.select(s.c.version).where(s.c.name == definition.name)).first()
        if current is not None and known[definition.name].document() == definition.document():
            return Saved(definition.name, int(current[0]), changed=False)
        version = add_version(
            conn,
            s,
            v,
            definition.name,
            definition.document(),
            now,
            None if current is None else int(current[0]),
        )
    return Saved(definition.name, version, changed=True)
