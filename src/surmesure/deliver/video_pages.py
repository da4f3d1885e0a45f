"""A video page opened: the person's film with its poster and subtitles, the campaign's
buttons, and what the person did with the film, counted for the campaign.

:func:`open_page` shows the page of a video link (:mod:`surmesure.deliver.video`): an HTML5
``<video>`` whose poster, film and subtitles are the page's own addresses
(``/v/{token}/poster.jpg``, ``film.mp4``, ``subtitles.vtt``), answered by :func:`film_file`
from the film recorded for the link's person and campaign (never from the address), and the
campaign's buttons (``video.buttons``, else the shop's) as tracked links: a click of channel
``video`` for the campaign (:func:`surmesure.deliver.tracking.click_link`). The page loads one
script of this server (``/v/player.js``, no other site) that reports what the film did
(:data:`EVENTS`) to ``POST /v/{token}/events``; :func:`record_event` keeps each as an activity
of channel ``video`` for the campaign (``channel_activity``):

==============  ================================================
kind            when
==============  ================================================
``opened``      the page was opened (at most once an hour a link)
``played``      the film started
``quarter_25``  a quarter of it was played (``quarter_50``, ``quarter_75``)
``completed``   it was played to its end
==============  ================================================

An event is kept once per link (its id is a hash of the token and the kind): the script
reporting it again, or anyone replaying the request, adds nothing. Opening the page also
reports the video message delivered, as a web page's view does
(:func:`surmesure.deliver.web.viewed`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.deliver import documents, video, web
from surmesure.deliver.tracking import activity, click_link, hourly_id
from surmesure.domain.campaigns import CampaignDefinition
from surmesure.errors import InvalidInput, NotFound
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

HTML = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "html"),
    autoescape=select_autoescape(["html"]),
)
SCRIPT = Path(__file__).parent / "html" / "player.js"
SOURCE = "video_page"
EVENTS = {
    "play": "played",
    "25": "quarter_25",
    "50": "quarter_50",
    "75": "quarter_75",
    "complete": "completed",
}
"""What the page's script reports -> the activity kept."""
WORDS = {
    "fr": {
        "title": "Votre film",
        "subtitles": "Français",
        "fallback": "Votre navigateur ne lit pas cette vidéo :",
        "download": "la télécharger",
        "shop": "Voir la boutique",
    },
    "en": {
        "title": "Your film",
        "subtitles": "English",
        "fallback": "Your browser does not play this video:",
        "download": "download it",
        "shop": "Visit the shop",
    },
}
GONE = NotFound("This page does not exist or has expired.", hint="ask for a new link")


@dataclass(frozen=True)
class Opened:
    """What a valid video link opens: its person now, the node the link names, the
    campaign, and the film's content hash."""

    person_id: int
    node_id: int
    campaign: str
    content_hash: str


def opened(store: Store, token: str, *, now: datetime, settings: Settings) -> Opened:
    """What ``token`` opens; :class:`NotFound` for a bad, tampered or expired token, a
    person erased since, or a link whose person has no film for its campaign."""
    with store.connect() as conn:
        return _opened(conn, token, now=now, settings=settings)


def _opened(conn: Connection, token: str, *, now: datetime, settings: Settings) -> Opened:
    node, campaign = video.read_link(token, now=now, settings=settings)
    person = root_of(conn, node)
    film = video.film_of(conn, campaign, node)
    if person is None or film is None:
        raise GONE
    return Opened(person, node, campaign, film)


def link_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_page(store: Store, token: str, *, now: datetime, settings: Settings) -> tuple[str, int]:
    """The HTML of the video page ``token`` opens and the person id it names (see the
    module); :class:`NotFound` as :func:`opened`."""
    found = opened(store, token, now=now, settings=settings)
    with store.connect() as conn:
        definition, _ = documents.get(conn, found.campaign)
    locale = _locale(definition)
    row = activity(
        found.person_id, found.node_id, video.CHANNEL, "opened", now, SOURCE,
        campaign=found.campaign,
    )  # fmt: skip
    row["activity_id"] = hourly_id({"p": link_id(token), "c": found.campaign}, "opened", now)
    with store.begin() as conn:
        web.viewed(conn, found.campaign, found.person_id, found.node_id, now, video.CHANNEL, row)
    buttons = [(b.label, b.url) for b in (definition.video.buttons if definition.video else [])]
    if not buttons and settings.shop_url:
        buttons = [(WORDS[locale]["shop"], settings.shop_url)]
    html = HTML.get_template("video.html").render(
        token=token,
        lang=locale,
        words=WORDS[locale],
        buttons=[(label, _tracked(url, found, settings)) for label, url in buttons],
    )
    return html, found.node_id


def _locale(definition: CampaignDefinition) -> str:
    """The language of the page: its video template's (``fr`` when it cannot be read)."""
    try:
        locale = str(video.template_of(definition).locale)
    except (InvalidInput, OSError):
        return "fr"
    return locale if locale in WORDS else "fr"


def _tracked(url: str, found: Opened, settings: Settings) -> str:
    return click_link(
        url,
        found.node_id,
        found.campaign,
        public_url=settings.public_url,
        secret=settings.secret_key,
        channel=video.CHANNEL,
    )


def film_file(store: Store, token: str, name: str, *, now: datetime, settings: Settings) -> Path:
    """The file ``name`` (``film.mp4``, ``poster.jpg``, ``subtitles.vtt``) of the film
    ``token`` opens; :class:`NotFound` as :func:`opened`, or when the file is gone."""
    if name not in video.FILES:
        raise GONE
    found = opened(store, token, now=now, settings=settings)
    path = video.file_of(found.content_hash, name, settings)
    if not path.is_file():
        raise GONE
    return path


def record_event(
    store: Store, token: str, event: object, *, now: datetime, settings: Settings
) -> bool:
    """Keep the event ``event`` (a key of :data:`EVENTS`) of the film ``token`` opens, once
    per link; whether it was new. :class:`InvalidInput` naming ``event`` for another value,
    :class:`NotFound` as :func:`opened`."""
    if not isinstance(event, str) or event not in EVENTS:
        raise InvalidInput(
            "event: not an event of a video page.",
            field="event",
            hint="send one of: " + ", ".join(EVENTS),
        )
    kind = EVENTS[event]
    with store.begin() as conn:  # one transaction: the write path of every play
        found = _opened(conn, token, now=now, settings=settings)
        row = activity(
            found.person_id, found.node_id, video.CHANNEL, kind, now, SOURCE,
            campaign=found.campaign,
        )  # fmt: skip
        row["activity_id"] = hashlib.sha256(f"{link_id(token)}\x1f{kind}".encode()).hexdigest()[:32]
        done = conn.execute(
            postgresql.insert(schema.channel_activity)
            .values(row)
            .on_conflict_do_nothing(index_elements=["activity_id"])
        )
    return bool(done.rowcount)


def script() -> bytes:
    """The page's script (:data:`SCRIPT`)."""
    return SCRIPT.read_bytes()
