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
``SURMESURE_PAGE_LINK_MAX_DAYS``. :func:`open_page` shows a page: the first view of a link
decides its content (a decision recorded like any other), and every later view of that link
shows that decision again (table ``page_views``, keyed by a hash of the token), so an offer
seen on a page is still there when the page is reloaded, whatever the offer's
``not_again_days`` say of new decisions. The page's button and products lead to the shop
(``SURMESURE_SHOP_URL``, ``SURMESURE_PRODUCT_URL``) through tracked links: a click of channel
``web`` for the campaign.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.decide import pages
from surmesure.decide.service import Recommender
from surmesure.deliver.channel import Delivery, Message, OnResult
from surmesure.deliver.tracking import activity, click_link
from surmesure.errors import NotFound
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.among import among_texts
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json, root_of

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
) -> int:
    """Report the web messages whose link left in a message of another channel delivered:
    ``carried`` is (person id, carrying channel, step) per message sent; a web message is
    recorded where the campaign planned none. Returns how many were reported."""
    from surmesure.deliver.plan import message_id

    m, r = schema.messages, schema.delivery_reports
    wanted = {message_id(campaign, p, CHANNEL, step): (p, via, step) for p, via, step in carried}
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
            "channel": CHANNEL,
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
        conn.execute(r.insert(), [_report(mid, now) for mid in reported])
    return len(reported)


def viewed(
    conn: Connection, campaign: str | None, person_id: int, node_id: int, now: datetime
) -> None:
    """A page of ``campaign`` opened: an ``opened`` activity of the campaign and, the first
    time, its web message reported delivered (see the module). ``person_id``: the person the
    link's ``node_id`` now belongs to."""
    conn.execute(
        schema.channel_activity.insert(),
        [activity(person_id, node_id, CHANNEL, "opened", now, SOURCE, campaign=campaign)],
    )
    if campaign is None:
        return
    m, r = schema.messages, schema.delivery_reports
    rows = conn.execute(
        sa.select(m.c.message_id).where(
            m.c.campaign == campaign,
            m.c.channel == CHANNEL,
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
            conn.execute(r.insert().values(**_report(str(mid), now)))


def _report(message_id: str, now: datetime) -> dict[str, object]:
    return {
        "report_id": uuid.uuid4().hex,
        "message_id": message_id,
        "channel": CHANNEL,
        "status": DELIVERED,
        "received_at": now,
    }


def page_id_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_page(
    store: Store,
    token: str,
    *,
    now: datetime,
    settings: Settings,
    recommender: Recommender | None = None,
) -> tuple[str, int]:
    """The HTML of the page ``token`` opens, and the person id it names (see the module);
    :class:`NotFound` for a bad, tampered or expired token or a person erased since."""
    node, campaign = pages.read_page(token, now=now, settings=settings)
    page_id = page_id_of(token)
    with store.connect() as conn:
        person = root_of(conn, node)
        if person is None:
            raise NotFound("This page does not exist or has expired.", hint="ask for a new link")
        decision = _shown(conn, page_id)
    if decision is None:
        fresh = pages.decide_page(store, node, now=now, settings=settings, recommender=recommender)
        decision = _keep(store, page_id, person, node, campaign, fresh, now)
    with store.begin() as conn:
        v = schema.page_views
        conn.execute(
            v.update().where(v.c.page_id == page_id).values(views=v.c.views + 1, last_viewed_at=now)
        )
        viewed(conn, campaign, person, node, now)
    html = pages.render_decision(
        store,
        token,
        person,
        decision,
        settings=settings,
        links=_links(node, campaign, decision, settings),
    )
    return html, node


def _keep(
    store: Store,
    page_id: str,
    person: int,
    node: int,
    campaign: str | None,
    decision: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Keep ``decision`` as the page's; the one kept first when two first views race."""
    try:
        with store.begin() as conn:
            conn.execute(
                schema.page_views.insert().values(
                    page_id=page_id,
                    person_id=person,
                    node_id=node,
                    campaign=campaign,
                    decision_id=decision["decision_id"],
                    first_viewed_at=now,
                    last_viewed_at=now,
                    views=0,
                )
            )
    except sa.exc.IntegrityError:
        with store.connect() as conn:
            return _shown(conn, page_id) or decision
    return decision


def _shown(conn: Connection, page_id: str) -> dict[str, Any] | None:
    """The decision the page showed before (opened from its sealed record), or ``None``."""
    v, d = schema.page_views, schema.decisions
    row = conn.execute(
        sa.select(d)
        .select_from(v.join(d, d.c.decision_id == v.c.decision_id))
        .where(v.c.page_id == page_id)
    ).first()
    if row is None:
        return None
    found = {
        "decision_id": row.decision_id,
        "person_id": row.person_id,
        "sealed": row.sealed,
        **{k: decode_json(row._mapping[k]) for k in atrest.DECISION_COLUMNS},
    }
    atrest.open_rows(conn, d, [found])
    result = found.get("result") or {}
    return {
        "decision_id": found["decision_id"],
        **result,
        "explanation": found.get("explanation") or {},
    }


def _links(
    person_id: int, campaign: str | None, decision: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The page's button and product links, each through a tracked redirect (a click of
    channel ``web``); none where the settings give no shop or product URL."""

    def tracked(url: str) -> str:
        return click_link(
            url,
            person_id,
            campaign,
            public_url=settings.public_url,
            secret=settings.secret_key,
            channel="web",
        )

    products: dict[str, str] = {}
    if settings.product_url:
        for p in decision.get("products") or []:
            code = str(p.get("product_code") or "")
            if code:
                products[code] = tracked(settings.product_url.format(product_code=quote(code)))
    return {"shop": tracked(settings.shop_url) if settings.shop_url else None, "products": products}
