"""Build one person's :class:`Snapshot` from the store, for the in-memory evaluator.

Everything is read as of ``now`` (naive UTC): traits observed later are left out before
resolution (:func:`surmesure.domain.traits.resolve`), and so is a derived_metrics row computed
later. Traits and metrics come from the one person read every stage shares
(:func:`surmesure.unify.reader.read_person`). Events, orders and consents are read whole: the
evaluator applies its windows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.domain.segments import METRICS, NearNode, SegmentDefinition, walk
from surmesure.domain.traits import resolve
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
from surmesure.unify.profile import decode_json
from surmesure.unify.reader import PersonRead, read_person

ALL_METRICS = frozenset(METRICS)


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
    read = read_person(
        conn, person_id=person_id, keys=(), now=now, metrics=ALL_METRICS, content_ids=()
    )
    traits = traits_of(read, now, half_life_days)
    home = None
    held = traits.get(HOME_STORE_TRAIT)
    if held is not None and isinstance(held.value, str):
        home = store_points(conn, [held.value]).get(held.value)
    return Snapshot(
        person_id=person_id,
        traits=traits,
        metrics=read.latest_metrics(now),
        events=_events(conn, person_id),
        orders=_orders(conn, person_id),
        consents=_consents(conn, person_id),
        home=home,
        places=places or {},
    )


def traits_of(read: PersonRead, now: datetime, half_life_days: float) -> dict[str, TraitValue]:
    """The person's traits resolved at ``now``, as the evaluator takes them."""
    return {
        name: TraitValue(trait.value, trait.effective_reliability)
        for name, trait in resolve(read.observations, now, half_life_days).items()
    }


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
