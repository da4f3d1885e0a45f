"""A personal page opened: the same content every time its link is opened, and the view
counted for the campaign that sent the link (:mod:`surmesure.deliver.web`).

:func:`open_page` shows a page: the first view of a link decides its content (a decision
recorded like any other), and every later view of that link shows that decision again (table
``page_views``, keyed by a hash of the token), so an offer seen on a page is still there when
the page is reloaded, whatever the offer's ``not_again_days`` say of new decisions. The page's
button and products lead to the shop (``SURMESURE_SHOP_URL``, ``SURMESURE_PRODUCT_URL``)
through tracked links: a click of channel ``web`` for the campaign.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.decide import pages
from surmesure.decide.service import Recommender
from surmesure.deliver.tracking import click_link
from surmesure.deliver.web import viewed
from surmesure.errors import NotFound
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json, root_of


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
