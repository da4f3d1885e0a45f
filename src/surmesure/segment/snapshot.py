"""Build one person's :class:`Snapshot` from the store, for the in-memory evaluator.

Everything is read as of ``now`` (naive UTC): traits observed later are left out before
resolution (:func:`surmesure.domain.traits.resolve`), and so is a derived_metrics row computed
later. Events, orders and consents are read whole: the evaluator applies its windows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.segments import METRICS, NearNode, SegmentDefinition, walk
from surmesure.protect import consent
from surmesure.protect.consent import Record as ConsentRecord
from surmesure.segment.evaluate import (
    EventRecord,
    OrderLine,
    OrderRecord,
    Point,
    Snapshot,
    TraitValue,
)
from surmesure.segment.sql import HOME_STORE_TRAIT
from surmesure.store import schema
from surmesure.unify.profile import decode_json, resolved_traits


def stores_named(definitions: Iterable[SegmentDefinition]) -> set[str]:
    """Stores that ``near`` conditions of ``definitions`` measure distance to."""
    return {
        leaf.near.store
        for d in definitions
        for _, leaf in walk(d.where)
        if isinstance(leaf, NearNode) and leaf.near.store is not None
    }


def store_points(conn: Connection, store_ids: Iterable[str]) -> dict[str, Point]:
    s = schema.stores
    wanted = sorted(set(store_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(s.c.store_id, s.c.latitude, s.c.longitude).where(
            s.c.store_id.in_(wanted), s.c.latitude.is_not(None), s.c.longitude.is_not(None)
        )
    )
    return {str(r.store_id): (float(r.latitude), float(r.longitude)) for r in rows}


def load_snapshot(
    conn: Connection,
    person_id: int,
    now: datetime,
    half_life_days: float,
    places: dict[str, Point] | None = None,
) -> Snapshot:
    """The snapshot of ``person_id`` as of ``now``; ``places`` from :func:`store_points`."""
    traits = _traits(conn, person_id, now, half_life_days)
    home = None
    held = traits.get(HOME_STORE_TRAIT)
    if held is not None and isinstance(held.value, str):
        home = store_points(conn, [held.value]).get(held.value)
    return Snapshot(
        person_id=person_id,
        traits=traits,
        metrics=_metrics(conn, person_id, now),
        events=_events(conn, person_id),
        orders=_orders(conn, person_id),
        consents=_consents(conn, person_id),
        home=home,
        places=places or {},
    )


def _traits(
    conn: Connection, person_id: int, now: datetime, half_life_days: float
) -> dict[str, TraitValue]:
    return {
        name: TraitValue(trait.value, trait.effective_reliability)
        for name, trait in resolved_traits(conn, person_id, now, half_life_days).items()
    }


def _metrics(conn: Connection, person_id: int, now: datetime) -> dict[str, Any]:
    m = schema.derived_metrics
    row = conn.execute(
        sa.select(*(m.c[name] for name in METRICS))
        .where(m.c.person_id == person_id, m.c.as_of <= now.date())
        .order_by(m.c.as_of.desc(), m.c.computed_at.desc())
        .limit(1)
    ).first()
    return {} if row is None else {k: v for k, v in row._mapping.items() if v is not None}


def _events(conn: Connection, person_id: int) -> tuple[EventRecord, ...]:
    e = schema.events
    rows = conn.execute(
        sa.select(e.c.type, e.c.event, e.c.occurred_at, e.c.properties).where(
            e.c.person_id == person_id
        )
    )
    return tuple(
        EventRecord(r.type, r.event, r.occurred_at, decode_json(r.properties) or {}) for r in rows
    )


def _orders(conn: Connection, person_id: int) -> tuple[OrderRecord, ...]:
    o, lines, products = schema.orders, schema.order_lines, schema.products
    rows = conn.execute(
        sa.select(
            o.c.order_id,
            o.c.ordered_at,
            o.c.total_amount,
            o.c.is_return,
            lines.c.product_code,
            lines.c.amount,
            products.c.category,
        )
        .select_from(
            o.outerjoin(lines, lines.c.order_id == o.c.order_id).outerjoin(
                products, products.c.product_code == lines.c.product_code
            )
        )
        .where(o.c.person_id == person_id)
        .order_by(o.c.order_id, lines.c.line_no)
    )
    orders: dict[str, tuple[Any, list[OrderLine]]] = {}
    for r in rows:
        _, found = orders.setdefault(r.order_id, (r, []))
        if r.product_code is not None:
            found.append(OrderLine(r.product_code, r.category, float(r.amount)))
    return tuple(
        OrderRecord(
            head.order_id, head.ordered_at, float(head.total_amount), head.is_return, tuple(found)
        )
        for head, found in orders.values()
    )


def _consents(conn: Connection, person_id: int) -> tuple[ConsentRecord, ...]:
    return consent.records_of(conn, person_id)
