"""What the people of a campaign did with their film (:mod:`surmesure.deliver.video_pages`).

Counted per person (the person a link's node belongs to now), from the campaign's activities
of channel ``video``, whatever the window:

- ``pages_opened``: people who opened their video page;
- ``views``: people who started their film;
- ``quarters``: people who played at least 25, 50 and 75 % of it, among the viewers;
- ``completed``: people who played it to its end, among the viewers; ``completion_rate``:
  ``completed / views`` (``None`` with a ``reason`` when nobody watched);
- ``clicked``: people who followed a button of the page, ``clicks`` the clicks recorded
  (a link's clicks within one hour count once, :mod:`surmesure.deliver.tracking`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver.video import CHANNEL
from surmesure.store import schema

QUARTERS = (25, 50, 75)


def measure(conn: Connection, campaign: str) -> dict[str, Any]:
    """The campaign's video figures (see the module)."""
    a = schema.channel_activity

    def did(kind: str) -> sa.ColumnElement[Any]:
        return sa.func.max(sa.case((a.c.kind == kind, 1), else_=0))

    kinds = ["opened", "played", *(f"quarter_{q}" for q in QUARTERS), "completed", "clicked"]
    per_person = (
        sa.select(
            a.c.person_id,
            *(did(k).label(k) for k in kinds),
            sa.func.sum(sa.case((a.c.kind == "clicked", 1), else_=0)).label("clicks"),
        )
        .where(a.c.campaign == campaign, a.c.channel == CHANNEL, a.c.person_id.is_not(None))
        .group_by(a.c.person_id)
        .subquery()
    )
    p = per_person.c
    watched = p.played == 1
    row = conn.execute(
        sa.select(
            sa.func.count().filter(p.opened == 1),
            sa.func.count().filter(watched),
            *(sa.func.count().filter(watched, p[f"quarter_{q}"] == 1) for q in QUARTERS),
            sa.func.count().filter(watched, p.completed == 1),
            sa.func.count().filter(p.clicked == 1),
            sa.func.coalesce(sa.func.sum(p.clicks), 0),
        )
    ).one()
    opened, views, *quarters, completed, clicked, clicks = (int(v or 0) for v in row)
    out: dict[str, Any] = {
        "pages_opened": opened,
        "views": views,
        "quarters": dict(zip((str(q) for q in QUARTERS), quarters, strict=True)),
        "completed": completed,
        "completion_rate": completed / views if views else None,
        "clicked": clicked,
        "clicks": clicks,
    }
    if not views:
        out["reason"] = "nobody started the film"
    return out
