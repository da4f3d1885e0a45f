"""The preference centre: a person's own page, behind a signed link, to choose their channels.

A link carries an opaque, signed token (:mod:`surmesure.protect.links`) under a salt of its
own, so a personal page link does not open it (nor the reverse). A bad, tampered or expired
token is :class:`~surmesure.errors.NotFound`.

The page lists the marketing channels (:data:`CHANNELS`) with the choice in force on each
(:mod:`surmesure.protect.consent`: no record means allowed) and offers "unsubscribe from all",
in French or English. Saving records, for each channel whose choice changed, one consent record
(purpose ``marketing``, source ``preference_centre``); "unsubscribe from all" records one refusal
on channel ``any``. Each record's evidence names the link by a digest of its token (never the
person) and the language of the page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.errors import NotFound
from surmesure.protect import consent, links
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

SALT = "surmesure.preferences"
SOURCE = "preference_centre"
CHANNELS = ("email", "sms", "phone", "paper", "web")
Language = Literal["fr", "en"]
HTML = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "html"),
    autoescape=select_autoescape(["html"]),
)

WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Vos préférences de contact",
        "intro": "Choisissez comment nous pouvons vous écrire au sujet de nos offres.",
        "email": "E-mail",
        "sms": "SMS",
        "phone": "Téléphone",
        "paper": "Courrier",
        "web": "Offres personnalisées sur le site",
        "save": "Enregistrer",
        "all": "Me désabonner de tout",
        "saved": "Vos préférences sont enregistrées.",
        "nothing": "Rien n'a changé.",
        "gone_title": "Page introuvable",
        "gone": "Ce lien n'existe pas ou a expiré.",
        "other": "English",
        "too_long": "Ce formulaire est trop long.",
    },
    "en": {
        "title": "Your contact preferences",
        "intro": "Choose how we may contact you about our offers.",
        "email": "E-mail",
        "sms": "Text messages",
        "phone": "Phone",
        "paper": "Post",
        "web": "Personal offers on the website",
        "save": "Save",
        "all": "Unsubscribe from everything",
        "saved": "Your preferences are saved.",
        "nothing": "Nothing changed.",
        "gone_title": "Page not found",
        "gone": "This link does not exist or has expired.",
        "other": "Français",
        "too_long": "This form is too long.",
    },
}


def language(given: str | None, accept: str | None = None) -> Language:
    """``fr`` or ``en``: the one asked for, else the browser's first choice, else ``fr``."""
    for candidate in (given or "", (accept or "").split(",")[0]):
        code = candidate.strip().lower()[:2]
        if code == "en":
            return "en"
        if code == "fr":
            return "fr"
    return "fr"


def make_token(
    person_id: int, *, days: int = 90, now: datetime, secret: str, max_days: int = 90
) -> str:
    return links.make_token(
        person_id, salt=SALT, days=days, now=now, secret=secret, max_days=max_days
    )


def read_token(token: str, *, now: datetime, secret: str, max_days: int = 90) -> int:
    """The person id of a valid preference-centre token; :class:`NotFound` otherwise."""
    return links.read_token(token, salt=SALT, now=now, secret=secret, max_days=max_days)


def link(person_id: int, *, days: int, now: datetime, settings: Settings) -> str:
    token = make_token(
        person_id, days=days, now=now, secret=settings.secret_key,
        max_days=settings.page_link_max_days,
    )  # fmt: skip
    return f"{settings.public_url.rstrip('/')}/preferences/{token}"


def _person(conn: Connection, token: str, now: datetime, settings: Settings) -> int:
    found = read_token(
        token, now=now, secret=settings.secret_key, max_days=settings.page_link_max_days
    )
    person_id = root_of(conn, found)
    if person_id is None:
        raise NotFound("This page does not exist or has expired.", hint="ask for a new link")
    return person_id


def choices(conn: Connection, person_id: int, now: datetime) -> dict[str, bool]:
    """Channel -> marketing allowed at ``now`` (not refused)."""
    records = consent.records_of(conn, person_id, ("marketing",))
    return {c: not consent.refused(records, "marketing", c, now) for c in CHANNELS}


def render(
    store: Store, token: str, *, now: datetime, settings: Settings, lang: Language, note: str = ""
) -> str:
    """The page of ``token`` in ``lang``; :class:`NotFound` for a bad or expired token."""
    with store.connect() as conn:
        person_id = _person(conn, token, now, settings)
        current = choices(conn, person_id, now)
    return HTML.get_template("preferences.html").render(
        words=WORDS[lang],
        lang=lang,
        other="en" if lang == "fr" else "fr",
        channels=CHANNELS,
        current=current,
        token=token,
        note=note,
    )


def save(
    store: Store,
    token: str,
    form: Mapping[str, str],
    *,
    now: datetime,
    settings: Settings,
    lang: Language,
) -> int:
    """Record what the submitted ``form`` changed (see the module); how many records.
    A channel is chosen when its field is present (a checked box); ``all`` unsubscribes from
    every channel whatever the boxes say."""
    evidence = f"preference centre link {hashlib.sha256(token.encode()).hexdigest()[:16]} ({lang})"
    with store.begin() as conn:
        person_id = _person(conn, token, now, settings)
        if form.get("all"):
            changes = [("marketing", consent.ANY, False)]
        else:
            current = choices(conn, person_id, now)
            changes = [("marketing", c, c in form) for c in CHANNELS if (c in form) != current[c]]
        rows = [
            consent.consent_row(
                person_id, p, c, g, source=SOURCE, evidence=evidence, recorded_at=now
            )
            for p, c, g in changes
        ]
        return consent.record_consents(conn, rows)
