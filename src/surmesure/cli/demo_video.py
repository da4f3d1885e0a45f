"""The demo's films: the example video template rendered for two demo customers, one whose data
makes it personal and one who refused personalization (so their film is the neutral one),
written to ``--out/videos`` with their posters and subtitles.

The personal customer is the one with the most orders in the last year among those whose first
name is known; the neutral one, the customer with the most orders among those who refused
personalization on the video channel: someone the shop knows well, whose film still shows
nothing of them. Either may be missing from a world too small to hold one; the demo then says
so rather than failing.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.markup import escape

from surmesure.cli.common import console
from surmesure.cli.video import copy_film
from surmesure.deliver.video import forget
from surmesure.protect import consent
from surmesure.store import Store, schema
from surmesure.video import Film, load_template, render_person
from surmesure.video.people import CHANNEL

VIDEOS_FOLDER = "videos"
#: the people tried for the personal film, best first (the first whose film is personal wins)
CANDIDATES = 20


def example_template() -> Path:
    """The shipped example template (a film of about 20 s, in French)."""
    found = resources.files("surmesure.video") / "examples" / "year_in_review.yaml"
    return Path(str(found))


def _by_orders(conn: sa.Connection, people: sa.Select[Any] | None, since: datetime) -> list[int]:
    """Ids of people with orders since ``since``, most orders first (``people``: only those)."""
    o = schema.orders
    query = (
        sa.select(o.c.person_id)
        .where(o.c.person_id.is_not(None), o.c.ordered_at >= since, ~o.c.is_return)
        .group_by(o.c.person_id)
        .order_by(sa.func.count().desc(), o.c.person_id)
        .limit(CANDIDATES)
    )
    if people is not None:
        query = query.where(o.c.person_id.in_(people.scalar_subquery()))
    return [int(p) for p in conn.execute(query).scalars()]


def _named() -> sa.Select[Any]:
    t = schema.traits
    return sa.select(t.c.person_id).where(t.c.name == "first_name").distinct()


def _copy(store: Store, film: Film, mp4: Path) -> dict[str, Any]:
    """``film`` copied to ``mp4`` (its poster and subtitles beside it), and its files left in the
    video folder removed when it is personal: the demo's copy is the only one kept."""
    copy_film(film, mp4)
    forget(store, [film], store.settings)
    paths = {"film": mp4, "poster": mp4.with_suffix(".jpg"), "subtitles": mp4.with_suffix(".vtt")}
    return {
        **{k: str(v) for k, v in paths.items()},
        "duration_s": film.duration_s,
        "neutral": film.neutral,
    }


def videos_demo(store: Store, out: Path, now: datetime) -> dict[str, Any]:
    """The personal and the neutral film of two demo customers (see the module)."""
    template = load_template(example_template())
    since = now - timedelta(days=365)
    with store.connect() as conn:
        named = _by_orders(conn, _named(), since)
        refused = _by_orders(conn, consent.refused_people("personalization", CHANNEL, now), since)
    found: dict[str, Any] = {"template": str(example_template())}
    clock = time.perf_counter()
    for person in named:
        film = render_person(store, template, person, settings=store.settings, now=now)
        if not film.neutral:
            found["personal"] = {
                "person_id": person,
                **_copy(store, film, out / VIDEOS_FOLDER / "personal.mp4"),
            }
            break
    for person in refused[:1]:
        film = render_person(store, template, person, settings=store.settings, now=now)
        found["neutral"] = {
            "person_id": person,
            **_copy(store, film, out / VIDEOS_FOLDER / "neutral.mp4"),
        }
    found["seconds"] = round(time.perf_counter() - clock, 2)
    return found


def print_videos(found: dict[str, Any]) -> None:
    for kind, words in (("personal", "personal film"), ("neutral", "neutral film")):
        film = found.get(kind)
        if film is None:
            console.print(f"No customer of this world gets a {words}.")
            continue
        reason = "" if kind == "personal" else ", who refused personalization"
        console.print(
            f"The {words} of person {film['person_id']}{reason}: "
            f"[bold]{escape(film['film'])}[/] ({film['duration_s']:.0f} s, poster and subtitles "
            "beside it)"
        )
    console.print(
        f"Films made in {found['seconds']:.1f} s from {escape(found['template'])}: "
        "[bold]surmesure video render TEMPLATE --person ID --out film.mp4[/]"
    )
