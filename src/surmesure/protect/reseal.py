"""Changing ``SURMESURE_SEALED_TRAITS``: the trait values already stored follow the new list.

A trait named in ``Settings.sealed_traits`` is sealed from its next observation on
(:mod:`surmesure.protect.atrest`); :func:`reseal_traits` (``surmesure key reseal``) brings the
values stored before the change into line, in batches, in one transaction:

- a value of a name newly in the list is sealed under its node's key and its plain ``value``
  cleared (a value attached to no node has no key to seal under and stays plain);
- a value of a name no longer in the list is opened back into ``value`` and ``sealed``
  cleared (a value whose key was destroyed, its person erased, stays empty).

A saved segment whose condition compares the value of a trait now sealed would match nobody
(no SQL reads a sealed value): :func:`saved_sealed_comparisons` names each such condition, so
it is reported (here, and by ``surmesure segment validate NAME``) rather than silently wrong.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.protect import atrest
from surmesure.segment import repository
from surmesure.segment.definitions import sealed_comparisons
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.update import update_rows

BATCH = 5_000
t = schema.traits


@dataclass
class Resealed:
    """Trait values sealed and opened, and the saved segments' conditions now comparing a
    sealed trait."""

    sealed: int = 0
    opened: int = 0
    segments: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reseal_traits(store: Store, *, now: datetime | None = None) -> Resealed:
    """Seal and open stored trait values to match ``Settings.sealed_traits`` (see the
    module docstring)."""
    names = sorted(store.settings.sealed_traits)
    result = Resealed()
    with store.begin() as conn:
        result.sealed = _seal(conn, names, now or utcnow())
        result.opened = _open(conn, names)
        result.segments = saved_sealed_comparisons(conn, names)
    return result


def _rows(conn: Connection, where: sa.ColumnElement[bool]) -> list[Any]:
    text = sa.cast(t.c.value, sa.Text).label("text")
    query = sa.select(t.c.record_key, t.c.name, t.c.node_id, t.c.sealed, text).where(where)
    return list(conn.execute(query.limit(BATCH)))


def _seal(conn: Connection, names: list[str], now: datetime) -> int:
    done = 0
    wanted = sa.and_(
        t.c.name.in_(names), t.c.sealed.is_(None), t.c.value.is_not(None), t.c.node_id.is_not(None)
    )
    while rows := _rows(conn, wanted):
        sealed = atrest.seal_texts(conn, [r.node_id for r in rows], [r.text for r in rows], now=now)
        _store(conn, rows, [None] * len(rows), sealed)
        done += len(rows)
    return done


def _open(conn: Connection, names: list[str]) -> int:
    done = 0
    while rows := _rows(conn, sa.and_(t.c.sealed.is_not(None), t.c.name.not_in(names))):
        texts = atrest.open_texts(conn, [r.node_id for r in rows], [bytes(r.sealed) for r in rows])
        _store(conn, rows, texts, [None] * len(rows))
        done += len(rows)
    return done


def _store(
    conn: Connection, rows: list[Any], values: list[str | None], sealed: list[bytes | None]
) -> None:
    data = {
        "record_key": pa.array([r.record_key for r in rows], pa.string()),
        "name": pa.array([r.name for r in rows], pa.string()),
        "value": pa.array(values, pa.string()),
        "sealed": pa.array(sealed, pa.binary()),
    }
    update_rows(conn, t, pa.table(data))


def saved_sealed_comparisons(conn: Connection, sealed: Collection[str]) -> list[dict[str, str]]:
    """Each condition of a saved segment (current version) comparing a trait of ``sealed``."""
    return [
        {"segment": name, "place": place, "trait": trait, "op": op}
        for name, definition in sorted(repository.catalog(conn).items())
        for place, trait, op in sealed_comparisons(definition, sealed)
    ]
