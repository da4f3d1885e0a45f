"""Identifier values at rest: a blind index to look them up, a sealed copy to show them.

Contract (see :mod:`surmesure.protect.crypto` for the primitives):

- No column holds an identifier's normalized value in clear. ``identifiers.value`` and
  ``identity_claims.value`` hold its blind index :func:`index` (``kind``, value), and their
  ``sealed`` column the value sealed under the node :data:`SEALED_UNDER` names: the row's
  ``node_id`` for a held identifier, the ``holder_id`` for a claim (a claim names the
  holder's identifier, so it shreds with the holder, whoever claimed it); ``events.user_id`` and
  ``events.anonymous_id`` hold the index of kinds ``customer_id`` and ``anonymous_id``,
  ``orders.customer_ref`` and ``derived_metrics.customer_id`` the index of kind
  ``customer_id``, an alias event's ``properties.previous_id`` the index of kind
  ``anonymous_id``. Equal identifiers have equal indexes, so every look-up and join by value
  works on the index; whoever shows a value opens it from ``identifiers.sealed``
  (:func:`open_values`), in batches.
- Merge evidence names identifiers by kind and index (:func:`indexed_evidence`), never by
  value.
- Once a person is erased, their keys are destroyed: the sealed copies no longer open, and an
  index no longer leads to any value.
- The index key is the store's: derived from the ``encryption_key`` of ``store.settings`` (the
  app's, in :func:`surmesure.api.app.create_app`), never read from the environment here, so
  what a store indexes and what its look-ups and segments compare are indexed alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.segments import INDEXED_METRICS
from surmesure.protect import crypto
from surmesure.store import schema
from surmesure.store.engine import Store

if TYPE_CHECKING:
    from surmesure.config import Settings

Identifier = tuple[str, str]
INDEX_PURPOSE = b"surmesure blind index"
"""The HKDF purpose of the index key (the one :class:`crypto.Keyring` derives)."""
USER_ID_KIND = "customer_id"
"""The identifier kind a ``userId`` is (and ``orders.customer_ref``, ``customer_id``)."""
ANONYMOUS_ID_KIND = "anonymous_id"
"""The identifier kind an ``anonymousId`` is."""

SEALED_UNDER = {"identifiers": "node_id", "identity_claims": "holder_id"}
"""The column naming the node whose key seals each table's ``sealed`` values."""

_keys: dict[str, bytes] = {}


def index_key(source: Store | Settings) -> bytes:
    """The blind-index key of the ``encryption_key`` of a store's settings (or of
    ``settings`` the store follows)."""
    secret = (source.settings if isinstance(source, Store) else source).encryption_key
    key = _keys.get(secret)
    if key is None:
        key = _keys[secret] = crypto.derive(secret, INDEX_PURPOSE)
    return key


def index(store: Store, kind: str, value: str) -> str:
    """The blind index of the normalized ``value`` of ``kind`` in ``store``."""
    return _index(index_key(store), kind, value)


def index_with(key: bytes, kind: str, value: str) -> str:
    """The blind index of the normalized ``value`` of ``kind`` under ``key``
    (:func:`index_key`)."""
    return _index(key, kind, value)


def indexes(store: Store, identifiers: Iterable[Identifier]) -> list[str]:
    """The blind index of each normalized ``(kind, value)`` in ``store``, in order."""
    key = index_key(store)
    return [_index(key, kind, value) for kind, value in identifiers]


@lru_cache(maxsize=32_768)
def _index(key: bytes, kind: str, value: str) -> str:
    """Recent indexes remembered: a returning device's id is indexed on each of its calls."""
    return crypto.blind_index(key, kind, value)


def index_array(
    store: Store, kind: str, values: Sequence[str | None] | pa.Array | pa.ChunkedArray
) -> pa.Array:
    """An Arrow string array of the indexes in ``store`` of ``values`` of a plain kind
    (``customer_id``, ``anonymous_id``: trimmed, as identity resolution normalizes them);
    nulls kept."""
    items = values.to_pylist() if isinstance(values, pa.Array | pa.ChunkedArray) else values
    key = index_key(store)
    return pa.array(
        [None if v is None else _index(key, kind, str(v).strip()) for v in items], pa.string()
    )


def ring(store: Store) -> crypto.Keyring:
    """The process's key ring of ``store`` under its ``encryption_key``."""
    settings = store.settings
    return crypto.keyring(store, settings.encryption_key, settings.data_key_cache)


def at_rest(
    store: Store, conn: Connection, table: sa.Table, data: pa.Table, now: datetime
) -> pa.Table:
    """Rows of ``table`` (``identifiers`` or ``identity_claims``) with ``kind`` and ``value``
    in clear, as they are stored: ``value`` its blind index, ``sealed`` the value sealed under
    the node :data:`SEALED_UNDER` names (keys made in the caller's transaction, one batch)."""
    kinds = [str(k) for k in data.column("kind").to_pylist()]
    values = [str(v) for v in data.column("value").to_pylist()]
    nodes = [int(n) for n in data.column(SEALED_UNDER[str(table.name)]).to_pylist()]
    key = index_key(store)
    indexed = pa.array([_index(key, k, v) for k, v in zip(kinds, values, strict=True)], pa.string())
    data = data.set_column(data.column_names.index("value"), "value", indexed)
    sealed = ring(store).seal_many(conn, nodes, values, now=now)
    return data.append_column("sealed", pa.array(sealed, pa.binary()))


def indexed_evidence(store: Store, evidence: Mapping[str, object]) -> dict[str, object]:
    """Merge evidence with each identifier it names (``via``, ``identifiers``: ``{"kind",
    "value"}``) as ``{"kind", "index"}`` in ``store``; entries already indexed are kept."""
    key = index_key(store)

    def one(item: object) -> object:
        if isinstance(item, Mapping) and "value" in item and "kind" in item:
            return {
                "kind": item["kind"],
                "index": _index(key, str(item["kind"]), str(item["value"])),
            }
        return item

    out = dict(evidence)
    if "via" in out:
        out["via"] = one(out["via"])
    named = out.get("identifiers")
    if isinstance(named, list):
        out["identifiers"] = [one(i) for i in named]
    return out


def open_values(
    store: Store, conn: Connection, indexes: Iterable[Identifier]
) -> dict[Identifier, str]:
    """The value of each held ``(kind, index)`` (opened from ``identifiers.sealed`` in one
    batch); an index nobody holds, or whose person was erased, is left out."""
    wanted = sorted(set(indexes))
    if not wanted:
        return {}
    ident = schema.identifiers
    rows = [
        row
        for start in range(0, len(wanted), 1000)  # a bounded number of parameters per query
        for row in conn.execute(
            sa.select(ident.c.kind, ident.c.value, ident.c.node_id, ident.c.sealed).where(
                sa.tuple_(ident.c.kind, ident.c.value).in_(wanted[start : start + 1000])
            )
        )
    ]
    opened = ring(store).open_many(
        conn,
        [int(r.node_id) for r in rows],
        [None if r.sealed is None else bytes(r.sealed) for r in rows],
    )
    return {
        (str(r.kind), str(r.value)): text
        for r, text in zip(rows, opened, strict=True)
        if text is not None
    }


INDEXED: dict[tuple[str, str], str] = {
    ("events", "user_id"): USER_ID_KIND,
    ("events", "anonymous_id"): ANONYMOUS_ID_KIND,
    ("orders", "customer_ref"): USER_ID_KIND,
    ("derived_metrics", "customer_id"): USER_ID_KIND,
}
"""Columns holding the blind index of an identifier (of the kind named) outside identifiers."""


def reveal(
    store: Store,
    conn: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    identifiers: Iterable[Identifier],
) -> list[dict[str, Any]]:
    """``rows`` of ``table`` about a person, as a person is shown them: a ``sealed`` column
    opened (one batch) into ``value``, an indexed column (:data:`INDEXED`) given the value of
    the person's ``identifiers`` (normalized) it indexes, else left as its index."""
    under = SEALED_UNDER.get(str(table.name))
    if under is not None:
        opened = ring(store).open_many(
            conn,
            [None if r.get(under) is None else int(r[under]) for r in rows],
            [None if r.get("sealed") is None else bytes(r["sealed"]) for r in rows],
        )
        rows = [
            {**{k: v for k, v in r.items() if k != "sealed"}, "value": value}
            for r, value in zip(rows, opened, strict=True)
        ]
    columns = {c: kind for (t, c), kind in INDEXED.items() if t == table.name}
    if columns:
        key = index_key(store)
        values = {(kind, _index(key, kind, value)): value for kind, value in identifiers}
        rows = [
            {
                k: values.get((columns[k], v), v) if k in columns and v is not None else v
                for k, v in r.items()
            }
            for r in rows
        ]
    return rows


def metric_value(key: bytes, name: str, value: Any) -> Any:
    """A segment condition's value for metric ``name``, as stored: the blind index under
    ``key`` (the store's :func:`index_key`) of each customer id for ``customer_id``
    (:data:`surmesure.domain.segments.INDEXED_METRICS`)."""
    if name not in INDEXED_METRICS or value is None:
        return value
    if isinstance(value, list):
        return [_index(key, USER_ID_KIND, str(v).strip()) for v in value]
    return _index(key, USER_ID_KIND, str(value).strip())
