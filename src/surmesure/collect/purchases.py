"""Web purchases become orders: the subscriber ``orders_from_events`` of the changes outbox.

For each stored track event delivered (``event`` changes of type ``track``) named ``Order
Completed`` (the change's ``name``), the event is read back and becomes an order
(:mod:`surmesure.collect.ecommerce`) of the event's person, at the event's time, channel
``web``, source the event's source, its ``customer_ref`` the event's ``userId`` (as its blind
index, like an imported order's), with one order line per product; a product the catalogue does
not know is added to it. An order in another currency than the store's is converted with the
rates of ``SURMESURE_RATES``, keeping the amount and currency as sent
(:mod:`surmesure.collect.currency`). An order is stored once per ``order_id`` (the same event
delivered again, another event with the same order, or the order also imported from a file: the
first one stored stays), and each new order appends an ``order`` change, so real-time segments
see the purchase as they see an imported one. Properties were checked when the event was
collected; an event whose properties still make no order (stored before the check existed) is
passed over, left an event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from surmesure.collect import currency
from surmesure.collect.ecommerce import ORDER_COMPLETED, Purchase, fault, read
from surmesure.dispatch import outbox
from surmesure.dispatch.subscribers import Delivery
from surmesure.store import schema
from surmesure.store.among import among_texts
from surmesure.unify.profile import decode_json

NAME = "orders_from_events"
CHANNEL = "web"
US = pa.timestamp("us")
_ORDER_OR_UNNAMED = frozenset([ORDER_COMPLETED, None])


def on_changes(delivery: Delivery) -> int:
    """The handler (see the module): returns how many orders were new."""
    # the change names its event: only ``Order Completed`` is read back (a change stored
    # before names were kept, none, is read as any track event)
    refs = [
        c.ref
        for c in delivery.changes
        if c.kind == outbox.EVENT
        and c.detail == "track"
        and c.ref is not None
        and c.name in _ORDER_OR_UNNAMED
    ]
    if not refs:
        return 0
    e = schema.events
    found: list[tuple[Purchase, Any]] = []
    rows = delivery.conn.execute(
        sa.select(
            e.c.message_id,
            e.c.person_id,
            e.c.node_id,
            e.c.user_id,
            e.c.occurred_at,
            e.c.source,
            e.c.properties,
        ).where(e.c.event == ORDER_COMPLETED, among_texts(e.c.message_id, refs))
    )
    for row in rows:
        props = decode_json(row.properties)
        if props is not None and not isinstance(props, dict):
            continue
        if row.person_id is not None and fault(props) is None:
            found.append((read(props, str(row.message_id)), row))
    if not found:
        return 0
    order = {ref: i for i, ref in enumerate(refs)}  # the order they were stored in
    found.sort(key=lambda pair: order[str(pair[1].message_id)])
    return _write(delivery, found)


def _write(delivery: Delivery, found: list[tuple[Purchase, Any]]) -> int:
    store, conn, now = delivery.store, delivery.conn, delivery.now
    first: dict[str, tuple[Purchase, Any]] = {}
    for purchase, row in found:
        first.setdefault(purchase.order_id, (purchase, row))
    chosen, sent = _converted(delivery, list(first.values()))
    if not chosen:
        return 0
    orders = pa.table(
        {
            "order_id": pa.array([p.order_id for p, _ in chosen], pa.string()),
            "person_id": pa.array([r.person_id for _, r in chosen], pa.int64()),
            "node_id": pa.array([r.node_id for _, r in chosen], pa.int64()),
            "customer_ref": pa.array([r.user_id for _, r in chosen], pa.string()),
            "channel": pa.array([CHANNEL] * len(chosen), pa.string()),
            "ordered_at": pa.array([r.occurred_at for _, r in chosen], US),
            "is_return": pa.array([False] * len(chosen), pa.bool_()),
            "currency": pa.array([p.currency for p, _ in chosen], pa.string()),
            "total_amount": pa.array([p.total for p, _ in chosen], pa.float64()),
            "source": pa.array([str(r.source) for _, r in chosen], pa.string()),
            "original_currency": pa.array([c for _, c in sent], pa.string()),
            "original_amount": pa.array([a for a, _ in sent], pa.float64()),
        }
    )
    new = store.insert_new(conn, schema.orders, orders, "order_id")
    if not new:
        return 0
    made = [(p, r) for p, r in chosen if p.order_id in new]
    lines = [
        {
            "order_id": p.order_id,
            "line_no": i,
            "product_code": line.product_code,
            "description": line.name,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "amount": line.quantity * line.unit_price,
            "is_fee": False,
        }
        for p, _ in made
        for i, line in enumerate(p.lines, start=1)
    ]
    if lines:
        store.bulk_insert(conn, schema.order_lines, pa.Table.from_pylist(lines))
        _catalogue(delivery, made, now)
    outbox.append(
        store,
        conn,
        outbox.ORDER,
        [int(r.person_id) for _, r in made],
        at=now,
        refs=[p.order_id for p, _ in made],
    )
    return len(made)


def _converted(
    delivery: Delivery, chosen: list[tuple[Purchase, Any]]
) -> tuple[list[tuple[Purchase, Any]], list[tuple[float | None, str | None]]]:
    """The purchases in the store's currency (:func:`surmesure.collect.currency.
    convert_purchase`), each with its amount and currency as sent when converted. One whose
    rate was removed from the settings since it was collected is passed over, left an event."""
    store = currency.stored_currency(delivery.conn)
    rates = delivery.store.settings.rates
    out: list[tuple[Purchase, Any]] = []
    sent: list[tuple[float | None, str | None]] = []
    for purchase, row in chosen:
        store = store or purchase.currency
        done = currency.convert_purchase(purchase, store, rates)
        if done is not None:
            out.append((done[0], row))
            sent.append((done[1], done[2]))
    return out, sent


def _catalogue(delivery: Delivery, made: list[tuple[Purchase, Any]], now: datetime) -> None:
    """Products the catalogue lacks, from the lines (``import products`` stays authoritative:
    a known product is left as it is)."""
    products: dict[str, dict[str, Any]] = {}
    for purchase, _ in made:
        for line in purchase.lines:
            products.setdefault(
                line.product_code,
                {
                    "product_code": line.product_code,
                    "name": line.name,
                    "category": line.category,
                    "price": line.unit_price,
                    "currency": purchase.currency,
                    "updated_at": now,
                },
            )
    table = pa.Table.from_pylist(list(products.values()))
    delivery.store.bulk_insert(delivery.conn, schema.products, table)
