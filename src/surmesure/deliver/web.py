"""The web channel: the person's page (:mod:`surmesure.decide.pages`) as a campaign message.

A campaign with a ``web`` channel has a web message per person, like any other channel: its
id is the outbox's id for (campaign, person, ``web``, step). Everyone can be reached on it (a
page needs no address); a refusal of marketing on ``web`` still holds it back.

- Sent: :class:`WebChannel` publishes the page (the message's ``to`` is its link), which is
  ``sent`` but not yet ``delivered``: nobody was handed the link.
- Delivered: a message of another channel printing ``{{ page_link }}`` leaves, or the page is
  opened. The web message is then reported ``delivered`` (table ``delivery_reports``); when the
  campaign planned none for the person (the link rode on an e-mail or an SMS), one is recorded
  ``sent``, its ``reason`` saying by which channel (``link:email``), at no cost.
- Opened: each view of a campaign's page is an ``opened`` activity of the campaign on channel
  ``web`` (``channel_activity``), which campaign results count as opens.

A campaign's page link is signed for the person and the campaign (``c`` in the token), lives
``SURMESURE_PAGE_LINK_MAX_DAYS``; :mod:`surmesure.deliver.web_pages` shows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.decide import pages
from surmesure.deliver.channel import Delivery, Message, OnResult
from surmesure.deliver.tracking import activity
from surmesure.store import schema
from surmesure.store.among import among_texts
from surmesure.store.engine import Store

CHANNEL = "web"
SOURCE = "page"
DELIVERED = "delivered"


def page_link(campaign: str, person_id: int, now: datetime, settings: Settings) -> str:
    """The person's page link for ``campaign`` (see the module)."""
    return pages.link(
        person_id, days=settings.page_link_max_days, now=now, settings=settings, campaign=campaign
    )


class WebChannel:
    """Publishes pages: every message is ``sent`` (the page is ready at ``Message.to``)."""

    name = CHANNEL

    def send(
        self, messages: Sequence[Message], on_result: OnResult | None = None
    ) -> list[Delivery]:
        deliveries = [Delivery(m.message_id, "sent", provider_id="page", units=0) for m in messages]
        if on_result is not None:
            for delivery in deliveries:
                on_result(delivery)
        return deliveries

    def close(self) -> None:
        """Nothing is kept open."""


def delivered(
    conn: Connection,
    campaign: str,
    version: int,
    carried: Sequence[tuple[int, str, int]],
    now: datetime,
    channel: str = CHANNEL,
) -> int:
    """Report the web messages whose link left in a message of another channel delivered:
    ``carried`` is (person id, carrying channel, step) per message sent; a web message is
    recorded where the campaign planned none. Returns how many were reported. ``channel``:
    another channel whose messages are pages (``video``), accounted the same way."""
    from surmesure.deliver.plan import message_id

    m, r = schema.messages, schema.delivery_reports
    secret = Store.of(conn).settings.secret_key
    wanted = {
        message_id(secret, campaign, p, channel, step): (p, via, step) for p, via, step in carried
    }
    if not wanted:
        return 0
    known = {
        str(row[0]): str(row[1])
        for row in conn.execute(
            sa.select(m.c.message_id, m.c.status).where(among_texts(m.c.message_id, list(wanted)))
        )
    }
    new = [
        {
            "message_id": mid,
            "campaign": campaign,
            "version": version,
            "person_id": p,
            "channel": channel,
            "step": step,
            "status": "sent",
            "reason": f"link:{via}",
            "attempts": 0,
            "next_attempt_at": None,
            "provider_id": "page",
            "units": 0,
            "planned_at": now,
            "updated_at": now,
            "sent_at": now,
        }
        for mid, (p, via, step) in wanted.items()
        if mid not in known
    ]
    if new:
        conn.execute(m.insert(), new)
    # a planned (not yet published) web message is published by its link leaving
    waiting = [mid for mid, status in known.items() if status in ("planned", "sending")]
    if waiting:
        conn.execute(
            m.update()
            .where(among_texts(m.c.message_id, waiting))
            .values(status="sent", sent_at=now, updated_at=now, units=0, provider_id="page")
        )
    reported = [mid for mid in wanted if known.get(mid, "sent") in ("sent", "planned", "sending")]
    if reported:
        conn.execute(r.insert(), [_report(mid, now, channel) for mid in reported])
    return len(reported)


def viewed(
    conn: Connection,
    campaign: str | None,
    person_id: int,
    node_id: int,
    now: datetime,
    channel: str = CHANNEL,
    row: dict[str, object] | None = None,
) -> None:
    """A page of ``campaign`` opened: an ``opened`` activity of the campaign and, the first
    time, its web message reported delivered (see the module). ``person_id``: the person the
    link's ``node_id`` now belongs to; ``channel``: another channel whose messages are pages;
    ``row``: the activity to write, when the caller made it (its own id)."""
    opened = row or activity(person_id, node_id, channel, "opened", now, SOURCE, campaign=campaign)
    conn.execute(
        postgresql.insert(schema.channel_activity)
        .values(opened)
        .on_conflict_do_nothing(index_elements=["activity_id"])
    )
    if campaign is None:
        return
    m, r = schema.messages, schema.delivery_reports
    rows = conn.execute(
        sa.select(m.c.message_id).where(
            m.c.campaign == campaign,
            m.c.channel == channel,
            m.c.person_id.in_({person_id, node_id}),
            m.c.status == "sent",
        )
    ).all()
    for (mid,) in rows:
        done = conn.execute(
            sa.select(sa.func.count())
            .select_from(r)
            .where(r.c.message_id == mid, r.c.status == DELIVERED)
        ).scalar_one()
        if not done:
            conn.execute(r.insert().values(**_report(str(mid), now, channel)))


def _report(message_id: str, now: datetime, channel: str) -> dict[str, object]:
    return {
        "report_id": uuid.uuid4().hex,
        "message_id": message_id,
        "channel": channel,
        "status": DELIVERED,
        "received_at": now,
    }
