"""Stock as known at a date: rows last updated before ``as_of`` (a row updated later is not
known yet, as if no stock data had been imported for it).

A live call reads a snapshot of the whole stock table kept per (database, ``as_of``) and
checked every :data:`SNAPSHOT_TTL_SECONDS` against a cheap fingerprint: one small query every
few seconds instead of one per person, and a full read only when the stock changed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.recommend.guardrails import Stock
from surmesure.store import schema
from surmesure.store.engine import Store

SNAPSHOT_TTL_SECONDS = 10.0

_snapshots: dict[tuple[str, datetime | None], tuple[float, tuple[Any, ...], Stock]] = {}
_lock = threading.Lock()


def snapshot(
    store: Store,
    conn: Connection | None,
    as_of: datetime | None,
    *,
    max_age: float = SNAPSHOT_TTL_SECONDS,
) -> Stock:
    """The whole stock at ``as_of`` (``None``: now), checked again once older than
    ``max_age`` seconds (with ``conn``, or a connection opened then): re-read when its
    fingerprint changed, else kept, with what was worked out from it."""
    key = (store.url, as_of)
    with _lock:
        cached = _snapshots.get(key)
    if cached is not None and time.monotonic() - cached[0] < max_age:
        return cached[2]
    if conn is None:
        with store.connect() as own:
            return snapshot(store, own, as_of, max_age=max_age)
    stamp = fingerprint(conn, as_of)
    stock = cached[2] if cached is not None and cached[1] == stamp else stock_of(conn, None, as_of)
    with _lock:
        _snapshots[key] = (time.monotonic(), stamp, stock)
    return stock


def fingerprint(conn: Connection, as_of: datetime | None) -> tuple[Any, ...]:
    """Changes when stock rows known at ``as_of`` are added, removed or change (count,
    latest update, total quantity)."""
    s = schema.stock
    query = sa.select(sa.func.count(), sa.func.max(s.c.updated_at), sa.func.sum(s.c.quantity))
    if as_of is not None:
        query = query.where(s.c.updated_at < as_of)
    return tuple(conn.execute(query).one())


def clear_snapshots() -> None:
    with _lock:
        _snapshots.clear()


def stock_of(
    conn: Connection, product_codes: Sequence[str] | None, as_of: datetime | None
) -> Stock:
    """Quantities by product and store for ``product_codes`` (every product when ``None``)."""
    s = schema.stock
    query = sa.select(s.c.product_code, s.c.store_id, s.c.quantity)
    if as_of is not None:
        query = query.where(s.c.updated_at < as_of)
    if product_codes is not None:
        if not product_codes:
            return Stock({})
        query = query.where(s.c.product_code.in_(sorted(set(product_codes))))
    quantities: dict[str, dict[str, int]] = {}
    for code, store_id, quantity in conn.execute(query):
        quantities.setdefault(str(code), {})[str(store_id)] = int(quantity)
    return Stock(quantities)
