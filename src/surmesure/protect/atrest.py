"""Personal values sealed at rest: what the store holds of them opens only with the person's key.

Contract:

- A table tagged ``info["sealed"] = (node column, columns)`` in :mod:`surmesure.store.schema`
  keeps the values of ``columns`` of some rows in its ``sealed`` column, sealed
  (:mod:`surmesure.protect.crypto`) under the data key of the row's node column; those plain
  columns are then NULL. One column: the sealed text is that column's JSON value; several: a
  JSON object of them.
- A node column written ``-column`` (the quarantine's ``-quarantine_id``) names a key of the
  row's own: its node is minus the column's value, never a person's node (those are positive),
  so destroying it shreds that one row (:mod:`surmesure.protect.quarantined`).
- What is sealed: the value of a trait named in ``Settings.sealed_traits`` (``traits``, under
  ``node_id``); an event's ``context`` and an identify's traits (``events``, under ``node_id``;
  track and page properties stay plain, segments read them); a person's decision
  (``decisions``, under ``person_id``; a decision without a person stays plain).
- Readers take a row as it is stored, sealed or plain: a trait added to
  ``Settings.sealed_traits`` is sealed from its next observation on (migration 0014 sealed
  those of the default list a store held before it).
- Writers seal a batch in one :meth:`~surmesure.protect.crypto.Keyring.seal_many`; readers open
  a batch in one :meth:`~surmesure.protect.crypto.Keyring.open_many`. A value whose key was
  destroyed (the person was erased) opens as ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.protect import crypto
from surmesure.store import schema
from surmesure.store.engine import Store

BATCH = 20_000
"""Rows opened per key look-up when a reader goes through many."""


def keyring(conn: Connection) -> crypto.Keyring:
    """The process's key ring of the store ``conn`` belongs to."""
    store = Store.of(conn)
    settings = store.settings
    return crypto.keyring(store, settings.encryption_key, settings.data_key_cache)


def check_key(store: Store) -> None:
    """Refuse, naming the setting, a store whose data keys were wrapped under another
    ``SURMESURE_ENCRYPTION_KEY`` than the store's settings give: every read of a sealed value
    would fail. A store with no key yet passes."""
    from cryptography.exceptions import InvalidTag

    from surmesure.errors import ConfigError

    k = schema.person_keys
    with store.connect() as conn:
        row = conn.execute(sa.select(k.c.node_id, k.c.wrapped).limit(1)).first()
        if row is None:
            return
        try:
            keyring(conn).learn([(int(row[0]), bytes(row[1]))])
        except InvalidTag:
            raise ConfigError(
                "The store's data was sealed under another encryption key than the one set.",
                hint="set SURMESURE_ENCRYPTION_KEY to the key the store was written with",
                field="SURMESURE_ENCRYPTION_KEY",
            ) from None


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def seal_texts(
    conn: Connection,
    nodes: Sequence[int | None],
    texts: Sequence[str | None],
    *,
    now: datetime,
    known: bool = False,
) -> list[bytes | None]:
    """Each text sealed under its node (``None`` where either is ``None``), in one batch;
    ``known``: the nodes likely have keys already (see :meth:`~surmesure.protect.crypto.
    Keyring.seal_many`)."""
    if not any(t is not None for t in texts):
        return [None] * len(texts)
    return keyring(conn).seal_many(conn, nodes, texts, now=now, known=known)


def open_texts(
    conn: Connection, nodes: Sequence[int | None], sealed: Sequence[bytes | None]
) -> list[str | None]:
    """Each sealed value opened (``None`` where absent or shredded), in batches of
    :data:`BATCH`."""
    if not any(s is not None for s in sealed):
        return [None] * len(sealed)
    ring = keyring(conn)
    out: list[str | None] = []
    for start in range(0, len(sealed), BATCH):
        out.extend(
            ring.open_many(conn, nodes[start : start + BATCH], sealed[start : start + BATCH])
        )
    return out


def open_json(
    conn: Connection, nodes: Sequence[int | None], sealed: Sequence[bytes | None]
) -> list[Any]:
    """Each sealed value opened and decoded from JSON (``None`` where absent or shredded)."""
    return [None if t is None else orjson.loads(t) for t in open_texts(conn, nodes, sealed)]


def node_of(row: dict[str, Any], column: str) -> int | None:
    """The node whose key seals ``row``: its ``column``, or minus it for ``-column``."""
    if column.startswith("-"):
        own = row.get(column[1:])
        return None if own is None else -int(own)
    found = row.get(column)
    return None if found is None else int(found)


def open_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Put back, in place, the plain columns of the rows of ``table`` that hold a ``sealed``
    value (rows as read with ``sealed`` and the node column); ``sealed`` is dropped."""
    spec = table.info.get("sealed")
    if spec is None:
        return
    node_column, columns = spec
    chosen = [r for r in rows if r.get("sealed") is not None]
    opened = open_json(
        conn, [node_of(r, node_column) for r in chosen], [bytes(r["sealed"]) for r in chosen]
    )
    for row, value in zip(chosen, opened, strict=True):
        if len(columns) == 1:
            row[columns[0]] = value
        elif value is not None:
            row.update({c: value[c] for c in columns if value.get(c) is not None})
    for row in rows:
        row.pop("sealed", None)


DECISION_COLUMNS = ("context", "result", "explanation")


def seal_decisions(
    conn: Connection, records: Sequence[dict[str, Any]], *, now: datetime, encoded: bool = False
) -> list[bytes | None]:
    """The sealed context, result and explanation of each decision made for a person
    (``None`` for a decision without one), in one batch. ``encoded``: those three are JSON
    text already."""
    texts = [
        None
        if r.get("person_id") is None
        else joined({c: r.get(c) for c in DECISION_COLUMNS})
        if encoded
        else dumps({c: r.get(c) for c in DECISION_COLUMNS})
        for r in records
    ]
    nodes = [r.get("person_id") for r in records]
    return seal_texts(conn, nodes, texts, now=now, known=True)


def joined(parts: dict[str, str | None]) -> str:
    """The JSON object of JSON texts by key."""
    return (
        "{" + ",".join(f"{dumps(k)}:{'null' if v is None else v}" for k, v in parts.items()) + "}"
    )
