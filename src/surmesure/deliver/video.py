"""The video channel: each person's film (:mod:`surmesure.video`) on their video page.

A campaign shows a film when it has a ``video`` channel or a message printing
``{{ video_link }}`` (the person's video page) or ``{{ video_poster }}`` (its poster image, for
an e-mail to show as a picture linking to the page); its document names the video template
(``video: {template: FILE}``). It is accounted as the web channel is
(:mod:`surmesure.deliver.web`): a video message per person, ``sent`` when the page is
published, ``delivered`` once its link leaves on another channel or the page is opened; when
the link rode on an e-mail, the video message is recorded then (``reason`` ``link:email``).

Films are made before the messages that show them leave: :func:`render_due` renders, in one
batch, the film of everyone the campaign has planned a message for that shows it
(``campaign send`` runs it first, with its own progress; ``campaign render-videos`` runs it
ahead), and the sender renders a film still missing as its message leaves (:func:`render`;
a film that cannot be made has its message tried again later). Each film is recorded
per (campaign, person) in ``video_films`` with its content hash (its files
``<hash>.mp4 / .jpg / .vtt`` in ``SURMESURE_VIDEO_DIR``, shared by everyone whose film is the
same, such as the neutral one): a page finds its film from that record, never from its
address.

A video link is signed for the person and the campaign (salt ``surmesure.video``, so no page
link opens a video page and no video link a page) and lives ``SURMESURE_PAGE_LINK_MAX_DAYS``.
Erasing a person removes the files of their own films (:func:`scrub`), and a personal film
nothing records (one ``video render`` made and copied out) is removed once used
(:func:`forget`); the retention removes films no record names any more, or whose links have
expired (:mod:`surmesure.deliver.video_retention`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.deliver.web import WebChannel
from surmesure.domain.campaigns import CampaignDefinition
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import links
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.store.engine import Store

if TYPE_CHECKING:
    from surmesure.video import Film, VideoTemplate

CHANNEL = "video"
SALT = "surmesure.video"
PATH = "/v/"
FILES = {"film.mp4": "mp4", "poster.jpg": "jpg", "subtitles.vtt": "vtt"}
"""The files of a video page, by the name its address gives them -> their extension."""
OnProgress = Callable[[int, int], None]
BATCH = 200
"""Films rendered, then recorded, at a time."""


def video_link(campaign: str, person_id: int, now: datetime, settings: Settings) -> str:
    """The person's video page for ``campaign`` (see the module)."""
    token = links.make_token(
        person_id,
        salt=SALT,
        days=settings.page_link_max_days,
        now=now,
        secret=settings.secret_key,
        max_days=settings.page_link_max_days,
        campaign=campaign,
    )
    return f"{settings.public_url.rstrip('/')}{PATH}{token}"


def printed(link: str) -> dict[str, str]:
    """What a message prints of the video page ``link``: ``video_link``, ``video_poster``."""
    return {"video_link": link, "video_poster": f"{link}/poster.jpg"}


def read_link(token: str, *, now: datetime, settings: Settings) -> tuple[int, str]:
    """The person id (the identity node the link was made for) and the campaign of a valid
    video link's token; :class:`NotFound` otherwise."""
    payload = links.read_payload(
        token, salt=SALT, now=now, secret=settings.secret_key, max_days=settings.page_link_max_days
    )
    campaign = payload.get("c")
    if not isinstance(campaign, str):
        raise NotFound("This page does not exist or has expired.", hint="ask for a new link")
    return int(payload["p"]), campaign


class VideoChannel(WebChannel):
    """Publishes video pages: every message is ``sent`` (its film made, its page at
    ``Message.to``)."""

    name = CHANNEL


# -- films -----------------------------------------------------------------------------------


def film_id(campaign: str, node_id: int) -> str:
    return hashlib.sha256(f"{campaign}\x1f{node_id}".encode()).hexdigest()


def file_of(content_hash: str, name: str, settings: Settings) -> Path:
    """The file ``name`` (a key of :data:`FILES`) of the film ``content_hash``; the hash is
    the store's, checked again so that no value ever leads out of the folder."""
    if len(content_hash) > 64 or not content_hash.isalnum() or not content_hash.isascii():
        raise NotFound("This film does not exist.", hint="ask for a new link")
    return Path(settings.video_dir) / f"{content_hash}.{FILES[name]}"


def film_of(conn: Connection, campaign: str, node_id: int) -> str | None:
    """The content hash of the film recorded for the link's ``node_id``, if any."""
    f = schema.video_films
    found = conn.execute(
        sa.select(f.c.content_hash).where(f.c.film_id == film_id(campaign, node_id))
    ).scalar()
    return None if found is None else str(found)


def template_of(definition: CampaignDefinition) -> VideoTemplate:
    """The campaign's video template, read from its file."""
    if definition.video is None:
        raise InvalidInput(
            f"Campaign {definition.name!r} names no video template.",
            field="video",
            hint="add `video: {template: FILE}` to the campaign",
        )
    path = Path(definition.video.template)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise InvalidInput(
            f"video.template: cannot read {path} ({exc.strerror}).",
            field="video.template",
            hint="give the path of a video template, relative to the campaign document",
        ) from exc
    return _template(path, stamp)


@lru_cache(maxsize=16)
def _template(path: Path, stamp: int) -> VideoTemplate:
    """The template of ``path`` as it was at ``stamp`` (its modification time)."""
    from surmesure.video import load_template

    return load_template(path)


def record(conn: Connection, campaign: str, films: dict[int, Film], now: datetime) -> None:
    """Keep each person's film (person id -> film) for ``campaign``, in place of any before."""
    f = schema.video_films
    ids = {film_id(campaign, p): p for p in films}
    conn.execute(f.delete().where(f.c.film_id.in_(list(ids))))
    conn.execute(
        f.insert(),
        [
            {
                "film_id": fid,
                "person_id": p,
                "node_id": p,
                "campaign": campaign,
                "content_hash": films[p].content_hash,
                "neutral": films[p].neutral,
                "duration_s": float(films[p].duration_s),
                "rendered_at": now,
            }
            for fid, p in ids.items()
        ],
    )


def render(
    store: Store,
    definition: CampaignDefinition,
    people: Sequence[int],
    *,
    settings: Settings,
    now: datetime,
    on_progress: OnProgress | None = None,
) -> int:
    """Render and record the films of ``people`` for the campaign, :data:`BATCH` at a time
    (each batch's films recorded once made: a failure loses no earlier batch); how many."""
    from surmesure.video import render_many

    if not people:
        return 0
    template = template_of(definition)
    total, done = len(people), 0
    for start in range(0, total, BATCH):
        part = list(people[start : start + BATCH])

        def told(n: int, _: int, before: int = done) -> None:
            if on_progress is not None:
                on_progress(before + n, total)

        films = render_many(store, template, part, settings=settings, now=now, on_progress=told)
        with store.begin() as conn:
            record(conn, definition.name, dict(zip(part, films, strict=True)), now)
        done += len(part)
    return done


def scrub(conn: Connection, nodes: Sequence[int], settings: Settings) -> dict[str, str]:
    """Remove the files of the personal films of ``nodes`` that nobody else's record names
    (an erasure; the neutral film, shown to many, is kept), before their rows are deleted:
    path -> ``removed``, or ``missing`` when already gone."""
    f = schema.video_films
    mine = {
        str(r[0])
        for r in conn.execute(
            sa.select(f.c.content_hash).where(among_ids(f.c.node_id, nodes), f.c.neutral.is_(False))
        )
    }
    shared = (
        {
            str(r[0])
            for r in conn.execute(
                sa.select(f.c.content_hash).where(
                    f.c.content_hash.in_(list(mine)), sa.not_(among_ids(f.c.node_id, nodes))
                )
            )
        }
        if mine
        else set()
    )
    done: dict[str, str] = {}
    for content_hash in sorted(mine - shared):
        for name in FILES:
            path = file_of(content_hash, name, settings)
            try:
                path.unlink()
                done[str(path)] = "removed"
            except FileNotFoundError:
                done[str(path)] = "missing"
    return done


def forget(store: Store, films: Sequence[Film], settings: Settings) -> int:
    """Remove the files of the personal ``films`` that no record names (made for a copy
    elsewhere, not for a page); how many films went."""
    mine = {f.content_hash for f in films if not f.neutral}
    if not mine:
        return 0
    f = schema.video_films
    with store.connect() as conn:
        kept = set(
            conn.execute(sa.select(f.c.content_hash).where(f.c.content_hash.in_(sorted(mine))))
            .scalars()
            .all()
        )
    for content_hash in mine - kept:
        for name in FILES:
            file_of(content_hash, name, settings).unlink(missing_ok=True)
    return len(mine - kept)


def without_film(conn: Connection, campaign: str, people: Sequence[int]) -> list[int]:
    """Those of ``people`` with no film recorded for ``campaign``, in order."""
    f = schema.video_films
    have = {
        int(r[0])
        for r in conn.execute(
            sa.select(f.c.node_id).where(f.c.campaign == campaign, among_ids(f.c.node_id, people))
        )
    }
    return [p for p in dict.fromkeys(people) if p not in have]


def showing(definition: CampaignDefinition, settings: Settings) -> list[str]:
    """The campaign's channels whose messages show the film (the video channel, and those
    whose templates print its link or poster)."""
    from surmesure.deliver.content import templates_of

    if definition.video is None:  # nothing shows a film (the document is checked so)
        return []
    templates = templates_of(definition, settings)
    return [c for c, t in templates.items() if c == CHANNEL or t.prints_video_link]


def render_due(
    store: Store,
    definition: CampaignDefinition,
    *,
    settings: Settings,
    now: datetime,
    on_progress: OnProgress | None = None,
) -> int:
    """Render the films still missing for the people the campaign has planned a message
    for that shows one (see the module); how many were made."""
    channels = showing(definition, settings)
    if not channels:
        return 0
    m = schema.messages
    with store.connect() as conn:
        planned = [
            int(r[0])
            for r in conn.execute(
                sa.select(m.c.person_id)
                .where(
                    m.c.campaign == definition.name,
                    m.c.channel.in_(channels),
                    m.c.status.in_(("planned", "sending")),
                    m.c.person_id.is_not(None),
                )
                .distinct()
                .order_by(m.c.person_id)
            )
        ]
        missing = without_film(conn, definition.name, planned)
    return render(store, definition, missing, settings=settings, now=now, on_progress=on_progress)
