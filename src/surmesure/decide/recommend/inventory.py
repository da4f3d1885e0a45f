"""Stock as known at a date: rows last updated before ``as_of`` (a row updated later is not
known yet, as if no stock data had been imported for it).

A live call reads a snapshot of the whole stock table kept for :data:`SNAPSHOT_TTL_SECONDS`
per (database, ``as_of``): one query every few seconds instead of one per person."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.recommend.guardrails import Stock
from surmesure.store import schema
from surmesure.store.engine import Store

SNAPSHOT_TTL_SECONDS = 10.0

_snapshots: dict[tuple[str, datetime | None], tuple[float, Stock]] = {}
_lock = threading.Lock()


def snapshot(store: Store, conn: Connection, as_of: datetime | None) -> Stock:
    """The whole stock at ``as_of`` (``None``: now), re-read once older than the TTL."""
    key = (store.url, as_of)
    with _lock:
        cached = _snapshots.get(key)
    if cached is not None and time.monotonic() - cached[0] < SNAPSHOT_TTL_SECONDS:
        return cached[1]
    stock = stock_of(conn, None, as_of)
    with _lock:
        _snapshots[key] = (time.monotonic(), stock)
    return stock


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
