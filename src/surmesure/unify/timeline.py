"""A person's timeline: their events and orders in one list, latest first, a page at a time.

A moment is ``{"at", "kind", "name", "ref", "amount", "currency", "channel", "source"}``:
``kind`` is ``event`` (``name`` its event name, or its type for an identify, a page...),
``order`` or ``return`` (``ref`` the order id, ``amount`` its total). Times are naive UTC. An
event's properties and context are sealed personal data and are not part of a moment; the
export holds them. Moments at the same time come in a fixed order (kind, then ref), so pages
neither skip nor repeat one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.store import schema
from surmesure.store.engine import Store

PAGE = 20
MAX_PAGE = 200


def moments(
    conn: Connection, person_id: int, *, offset: int = 0, limit: int = PAGE
) -> tuple[list[dict[str, Any]], bool]:
    """``limit`` moments of ``person_id`` (a root person: rows carry the root's id) after the
    first ``offset``, latest first, and whether more follow."""
    e, o = schema.events, schema.orders
    size = min(max(limit, 1), MAX_PAGE)
    events = sa.select(
        e.c.occurred_at.label("at"),
        sa.literal("event").label("kind"),
        sa.func.coalesce(e.c.event, e.c.type).label("name"),
        e.c.message_id.label("ref"),
        sa.cast(sa.null(), o.c.total_amount.type).label("amount"),
        sa.cast(sa.null(), sa.String(3)).label("currency"),
        sa.cast(sa.null(), sa.String(32)).label("channel"),
        e.c.source,
    ).where(e.c.person_id == person_id)
    orders = sa.select(
        o.c.ordered_at.label("at"),
        sa.case((o.c.is_return, sa.literal("return")), else_=sa.literal("order")).label("kind"),
        sa.cast(sa.null(), sa.String(256)).label("name"),
        o.c.order_id.label("ref"),
        o.c.total_amount.label("amount"),
        o.c.currency,
        o.c.channel,
        o.c.source,
    ).where(o.c.person_id == person_id)
    both = sa.union_all(events, orders).subquery()
    rows = conn.execute(
        sa.select(both)
        .order_by(both.c.at.desc(), both.c.kind, both.c.ref)
        .offset(max(offset, 0))
        .limit(size + 1)
    ).all()
    page = [{str(k): v for k, v in r._mapping.items()} for r in rows[:size]]
    return page, len(rows) > len(page)


def timeline(
    store: Store, person_id: int, *, offset: int = 0, limit: int = PAGE
) -> tuple[list[dict[str, Any]], bool]:
    """:func:`moments` in a connection of its own."""
    with store.connect() as conn:
        return moments(conn, person_id, offset=offset, limit=limit)
