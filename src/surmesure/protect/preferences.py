"""The preference centre: a person's own page, behind a signed link, to choose their channels,
their topics, how often they hear from us, and a pause.

A link carries an opaque, signed token (:mod:`surmesure.protect.links`) under a salt of its
own, so a personal page link does not open it (nor the reverse). A bad, tampered or expired
token is :class:`~surmesure.errors.NotFound`.

The page lists the marketing channels (:data:`CHANNELS`) with the choice in force on each
(:mod:`surmesure.protect.consent`: no record means allowed) and offers "unsubscribe from all",
in French or English. Saving records, for each channel whose choice changed, one consent record
(purpose ``marketing``, source ``preference_centre``); "unsubscribe from all" records one refusal
on channel ``any``. The topics (``Settings.preference_topics``), the frequency and the pause are
preference records (:mod:`surmesure.protect.marketing`), one per change, same source. A pause
runs until the start (00:00 UTC) of the day the person picks, at most
``Settings.preference_pause_max_days`` ahead; an empty date ends a pause in force. Each record's
evidence names the link by a digest of its token (never the person) and the language of the page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.dispatch import outbox
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import audit, consent, links, marketing
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

SALT = "surmesure.preferences"
SOURCE = "preference_centre"
LINK_ACTOR = "link:preferences"
"""The audit log's actor of a preference page opened: whoever holds the signed link."""
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
        "channels": "Par quels moyens",
        "topics": "Sur quels sujets",
        "frequency": "À quelle fréquence",
        "as_it_comes": "Au fil de l'actualité",
        "weekly": "Au plus une fois par semaine",
        "monthly": "Au plus une fois par mois",
        "pause": "Faire une pause",
        "pause_intro": "Aucun message commercial jusqu'au (vide : pas de pause) :",
        "paused": "Pause en cours jusqu'au {until}.",
        "bad_pause": "Choisissez une date de fin de pause entre demain et le {last}.",
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
        "channels": "How",
        "topics": "About what",
        "frequency": "How often",
        "as_it_comes": "As it comes",
        "weekly": "At most once a week",
        "monthly": "At most once a month",
        "pause": "Take a break",
        "pause_intro": "No marketing messages until (empty: no break):",
        "paused": "Break until {until}.",
        "bad_pause": "Pick an end of the break between tomorrow and {last}.",
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
    """The page of ``token`` in ``lang``, its opening written to the audit log (it shows the
    person's choices to whoever holds the link); :class:`NotFound` for a bad or expired
    token."""
    with store.connect() as conn:
        person_id = _person(conn, token, now, settings)
        current = choices(conn, person_id, now)
        records = marketing.records_of(conn, person_id)
    audit.record(store, LINK_ACTOR, "preferences.view", person_id=person_id, now=now)
    until = marketing.paused_until(records, now)
    words = WORDS[lang]
    return HTML.get_template("preferences.html").render(
        words=words,
        lang=lang,
        other="en" if lang == "fr" else "fr",
        channels=CHANNELS,
        current=current,
        topics=[
            (name, labels[lang], not marketing.topic_refused(records, name, now))
            for name, labels in settings.preference_topics.items()
        ],
        frequencies=marketing.FREQUENCIES,
        frequency=marketing.frequency(records, now).value,
        pause_until="" if until is None else until.date().isoformat(),
        paused="" if until is None else words["paused"].format(until=until.date().isoformat()),
        first_day=(now.date() + timedelta(days=1)).isoformat(),
        last_day=_last_day(now, settings).isoformat(),
        token=token,
        note=note,
    )


def _last_day(now: datetime, settings: Settings) -> date:
    return now.date() + timedelta(days=settings.preference_pause_max_days)


def _bad_pause(now: datetime, settings: Settings, lang: Language) -> InvalidInput:
    last = _last_day(now, settings)
    return InvalidInput(
        WORDS[lang]["bad_pause"].format(last=last.isoformat()),
        field="pause_until",
        hint=f"a date (YYYY-MM-DD) after today, at most {settings.preference_pause_max_days} "
        "days ahead",
    )


def _pause_end(given: str, now: datetime, settings: Settings, lang: Language) -> datetime | None:
    """The moment a pause chosen as ``given`` (``YYYY-MM-DD``; empty: none) ends; how far
    ahead it may be is :func:`surmesure.protect.marketing.preference_row`'s rule."""
    if not given.strip():
        return None
    try:
        return datetime.combine(date.fromisoformat(given.strip()), time())
    except ValueError:
        raise _bad_pause(now, settings, lang) from None


def _preference_rows(
    conn: Connection,
    person_id: int,
    form: Mapping[str, str],
    now: datetime,
    settings: Settings,
    lang: Language,
    evidence: str,
) -> list[dict[str, object]]:
    """The preference records of what ``form`` changed. Topics are read when the form carries
    its ``topics`` marker (so an unchecked box means "left"), frequency and pause when their
    fields are present."""
    records = marketing.records_of(conn, person_id)
    changes: list[tuple[str, str, str, datetime | None]] = []
    if "topics" in form:
        for name in settings.preference_topics:
            chosen = f"topic.{name}" in form
            if chosen == marketing.topic_refused(records, name, now):
                changes.append(("topic", name, "in" if chosen else "out", None))
    wanted = form.get("frequency")
    if wanted is not None and wanted != marketing.frequency(records, now).value:
        if wanted not in marketing.FREQUENCIES:
            raise InvalidInput(
                f"Frequency {wanted!r} is not known.",
                field="frequency",
                hint="use one of: " + ", ".join(marketing.FREQUENCIES),
            )
        changes.append(("frequency", "", wanted, None))
    if "pause_until" in form:
        end = _pause_end(form["pause_until"], now, settings, lang)
        current = marketing.paused_until(records, now)
        if end is None and current is not None:
            changes.append(("pause", "", "off", None))
        elif end is not None and end != current:
            changes.append(("pause", "", "on", end))
    try:
        return [
            marketing.preference_row(
                person_id,
                kind,
                value,
                name=name,
                until=until,
                source=SOURCE,
                evidence=evidence,
                recorded_at=now,
                pause_max_days=settings.preference_pause_max_days,
            )
            for kind, name, value, until in changes
        ]
    except InvalidInput as exc:
        if exc.field == "until":  # a pause too far ahead, or not ahead: said in the page's words
            raise _bad_pause(now, settings, lang) from exc
        raise


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
    every channel whatever the boxes say (topics, frequency and pause are left as they were).
    A bad frequency or pause date is :class:`~surmesure.errors.InvalidInput` and records
    nothing."""
    evidence = f"preference centre link {hashlib.sha256(token.encode()).hexdigest()[:16]} ({lang})"
    with store.begin() as conn:
        person_id = _person(conn, token, now, settings)
        if form.get("all"):
            changes = [("marketing", consent.ANY, False)]
            preference_rows: list[dict[str, object]] = []
        else:
            current = choices(conn, person_id, now)
            changes = [("marketing", c, c in form) for c in CHANNELS if (c in form) != current[c]]
            preference_rows = _preference_rows(conn, person_id, form, now, settings, lang, evidence)
        rows = [
            consent.consent_row(
                person_id, p, c, g, source=SOURCE, evidence=evidence, recorded_at=now
            )
            for p, c, g in changes
        ]
        # the caches of decisions re-read the person once this commits (people_changed)
        told = [outbox.CONSENT] * len(rows) + [outbox.PREFERENCE] * len(preference_rows)
        for kind in dict.fromkeys(told):
            outbox.append(store, conn, kind, [person_id], at=now)
        return consent.record_consents(conn, rows) + marketing.record(conn, preference_rows)
