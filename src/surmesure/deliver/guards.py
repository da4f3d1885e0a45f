"""The guardrails that read what came back and what was bought, for everyone at once.

- ``bounced``: every e-mail address of the person hard-bounced (:mod:`surmesure.deliver.
  addresses`: a bounce closes the address it came from, not the person's other addresses);
  ``undeliverable_address``: the person's postal address came back (paper);
- ``complained``: a complaint (report ``complained``) of an e-mail sent to the person
  suppresses e-mail for good;
- ``complained`` on every channel: no marketing message within
  ``SURMESURE_COMPLAINT_QUIET_HOURS`` of a complaint, whatever the channel;
- ``just_bought`` ("no digital stalking"): a person who bought one of the campaign's
  ``featured`` products, or a product of its featured categories, within ``featured.days`` is
  not chased with it;
- ``frequency_cap``: a person sent as many messages in the last day (week) as the campaign's
  ``caps`` allow, across campaigns and channels (or on the channel of a ``caps.channels``
  entry, for a message on that channel), gets no more: read again at send time, so that two
  campaigns planned before either left do not both reach the person.

Each function is one ``SELECT person_id`` over everyone (``scope``: only these people), so
planning a million people and checking a batch at send time read the same rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver import addresses
from surmesure.domain.campaigns import CampaignDefinition, Caps, Featured
from surmesure.store import schema
from surmesure.store.among import among_ids

BOUNCED = addresses.BOUNCED
COMPLAINED = "complained"
JUST_BOUGHT = "just_bought"
FREQUENCY_CAP = "frequency_cap"


def reported_people(
    status: str, channel: str = "email", since: datetime | None = None, scope: Any = None
) -> sa.Select[Any]:
    """``SELECT person_id`` of the persons one of whose messages on ``channel`` was reported
    ``status`` (since ``since``)."""
    m, r = schema.messages, schema.delivery_reports
    query = (
        sa.select(m.c.person_id)
        .select_from(r.join(m, m.c.message_id == r.c.message_id))
        .where(r.c.status == status, r.c.channel == channel, m.c.person_id.is_not(None))
    )
    if since is not None:
        query = query.where(r.c.received_at > since)
    if scope is not None:
        query = query.where(among_ids(m.c.person_id, scope))
    return query.distinct()


def complained_lately(now: datetime, hours: int, scope: Any = None) -> sa.Select[Any]:
    """``SELECT person_id`` of the persons who complained within ``hours`` of ``now``."""
    return reported_people(COMPLAINED, "email", now - timedelta(hours=hours), scope)


def just_bought(featured: Featured, now: datetime, scope: Any = None) -> sa.Select[Any] | None:
    """``SELECT person_id`` of the persons who bought a featured product or category within
    ``featured.days``; ``None`` when nothing is featured."""
    if not featured.products and not featured.categories:
        return None
    o, line, p = schema.orders, schema.order_lines, schema.products
    wanted = []
    if featured.products:
        wanted.append(line.c.product_code.in_(featured.products))
    if featured.categories:
        wanted.append(
            line.c.product_code.in_(
                sa.select(p.c.product_code).where(p.c.category.in_(featured.categories))
            )
        )
    query = (
        sa.select(o.c.person_id)
        .select_from(o.join(line, line.c.order_id == o.c.order_id))
        .where(
            o.c.person_id.is_not(None),
            o.c.is_return.is_(False),
            o.c.ordered_at > now - timedelta(days=featured.days),
            o.c.ordered_at <= now,
            sa.or_(*wanted),
        )
    )
    if scope is not None:
        query = query.where(among_ids(o.c.person_id, scope))
    return query.distinct()


def capped(caps: Caps, now: datetime, scope: Any = None) -> list[tuple[str | None, sa.Select[Any]]]:
    """``SELECT person_id`` of the persons sent as many messages (status ``sent``, any
    campaign) in the day before ``now`` as a ``per_day`` cap allows, and in the week before as a
    ``per_week`` one does: one query per cap set, with the channel it holds on (``None``:
    every channel, counting every channel's messages)."""
    m = schema.messages
    out: list[tuple[str | None, sa.Select[Any]]] = []
    sets: list[tuple[str | None, Any]] = [(None, caps), *caps.channels.items()]
    for channel, cap in sets:
        for limit, days in ((cap.per_day, 1), (cap.per_week, 7)):
            if limit is None:
                continue
            query = sa.select(m.c.person_id).where(
                m.c.status == "sent", m.c.sent_at > now - timedelta(days)
            )
            if channel is not None:
                query = query.where(m.c.channel == channel)
            if scope is not None:
                query = query.where(among_ids(m.c.person_id, scope))
            query = query.group_by(m.c.person_id).having(sa.func.count() >= limit)
            out.append((channel, query))
    return out


def at_send(
    conn: Connection,
    definition: CampaignDefinition,
    channel_of: dict[int, str],
    now: datetime,
    hours: int,
) -> dict[int, str]:
    """The people of a batch (person -> channel) a guardrail of this module holds back now,
    with the reason: read again at send time, as planning read it."""
    people = sorted(channel_of)
    if not people:
        return {}
    out: dict[int, str] = {}
    email = [p for p in people if channel_of[p] == "email"]
    if email:
        for (p,) in conn.execute(reported_people(COMPLAINED, "email", None, email)):
            out.setdefault(int(p), COMPLAINED)
        for (p,) in conn.execute(addresses.bounced_people(email)):
            out.setdefault(int(p), BOUNCED)
    paper = [p for p in people if channel_of[p] == "paper"]
    if paper:
        for (p,) in conn.execute(addresses.undeliverable_people(paper)):
            out.setdefault(int(p), addresses.UNDELIVERABLE_ADDRESS)
    if definition.purpose == "marketing":
        for (p,) in conn.execute(complained_lately(now, hours, people)):
            out.setdefault(int(p), COMPLAINED)
        if definition.featured is not None:
            query = just_bought(definition.featured, now, people)
            if query is not None:
                for (p,) in conn.execute(query):
                    out.setdefault(int(p), JUST_BOUGHT)
    for channel, query in capped(definition.caps, now, people):  # last, as planning does
        for (p,) in conn.execute(query):
            if channel is None or channel_of[int(p)] == channel:
                out.setdefault(int(p), FREQUENCY_CAP)
    return out
