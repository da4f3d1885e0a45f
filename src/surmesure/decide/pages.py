"""Personal micro-site pages: a signed, expiring link, the page, and its NPS question.

A link carries only an opaque, signed token (:mod:`surmesure.protect.links`), living at most
``SURMESURE_PAGE_LINK_MAX_DAYS``. A bad, tampered or expired token is
:class:`~surmesure.errors.NotFound`, which the page route shows as a plain 404 page. A link
takes one NPS answer: a second answer through the same link replaces the first. The page itself
is a decision for placement ``personal_page`` (recorded and explained like any other), plus a
summary of the relationship, hidden from a person who opted out of personalization. The
decision's body and offers are HTML when the template's format is ``html`` (its values already
escaped by the sandbox) and are escaped by the page otherwise. The page and its messages speak
the template's language (:mod:`.page_words`); :mod:`surmesure.deliver.web_pages` shows a page
again with the decision its first view made.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from babel import dates, numbers
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from surmesure.collect.bounds import NUL
from surmesure.config import Settings
from surmesure.decide.library import EXAMPLES, Library, library_for
from surmesure.decide.page_words import WORDS, Language, language_of
from surmesure.decide.service import DecideRequest, Recommender, decide
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import links
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

SALT = "surmesure.page"
PLACEMENT = "personal_page"
HTML = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "html"),
    autoescape=select_autoescape(["html"]),
)
HTML.filters["money"] = lambda value, currency, locale: numbers.format_currency(
    value, currency, locale=locale
)
HTML.filters["day"] = lambda value, locale: dates.format_date(value, "long", locale=locale)


def make_token(
    person_id: int,
    *,
    days: int = 30,
    now: datetime,
    secret: str,
    max_days: int = 90,
    campaign: str | None = None,
) -> str:
    return links.make_token(
        person_id,
        salt=SALT,
        days=days,
        now=now,
        secret=secret,
        max_days=max_days,
        campaign=campaign,
    )


def read_token(token: str, *, now: datetime, secret: str, max_days: int = 90) -> int:
    """The person id of a valid page token; :class:`NotFound` otherwise."""
    return links.read_token(token, salt=SALT, now=now, secret=secret, max_days=max_days)


def read_page(token: str, *, now: datetime, settings: Settings) -> tuple[int, str | None]:
    """The person id and campaign (``None``: a link made outside a campaign) of a valid
    page token; :class:`NotFound` otherwise."""
    payload = links.read_payload(
        token,
        salt=SALT,
        now=now,
        secret=settings.secret_key,
        max_days=settings.page_link_max_days,
    )
    return int(payload["p"]), payload.get("c")


def link(
    person_id: int, *, days: int, now: datetime, settings: Settings, campaign: str | None = None
) -> str:
    token = make_token(
        person_id,
        days=days,
        now=now,
        secret=settings.secret_key,
        max_days=settings.page_link_max_days,
        campaign=campaign,
    )
    return f"{settings.public_url.rstrip('/')}/p/{token}"


def page_library(settings: Settings) -> Library:
    found = library_for(settings)
    return found if PLACEMENT in found.by_placement else Library(EXAMPLES, found.topics)


def summary(store: Store, person_id: int) -> dict[str, Any]:
    """Orders, returns, amount spent and the first and last order of the person."""
    o = schema.orders
    with store.connect() as conn:
        row = conn.execute(
            sa.select(
                sa.func.count().filter(o.c.is_return.is_(False)),
                sa.func.coalesce(sa.func.sum(o.c.total_amount), 0.0),
                sa.func.min(o.c.ordered_at),
                sa.func.max(o.c.ordered_at),
            ).where(o.c.person_id == person_id)
        ).one()
    return {
        "orders": int(row[0]),
        "spent": float(row[1]),
        "first_order": row[2],
        "last_order": row[3],
    }


def page_language(settings: Settings) -> Language:
    """The language of the pages (their template's locale, :mod:`.page_words`)."""
    return language_of(page_library(settings).for_placement(PLACEMENT).definition.locale)


def decide_page(
    store: Store,
    person_id: int,
    *,
    now: datetime,
    settings: Settings,
    recommender: Recommender | None = None,
) -> dict[str, Any]:
    """A new decision for the person's page (recorded like any other)."""
    compiled = page_library(settings).for_placement(PLACEMENT)
    return decide(
        store,
        DecideRequest(placement=PLACEMENT, person_id=person_id, context={"channel": "web"}),
        compiled,
        now=now,
        recommender=recommender,
        time_limit_s=settings.template_time_limit_ms / 1000,
    )


def render_decision(
    store: Store,
    token: str,
    person_id: int,
    decision: dict[str, Any],
    *,
    settings: Settings,
    links: dict[str, Any] | None = None,
) -> str:
    """The HTML page showing ``decision`` (a new one, or the one the page showed before);
    ``links``: the button's (``shop``) and each product's (``products``) URL, none by
    default."""
    compiled = page_library(settings).for_placement(PLACEMENT)
    opted_out = bool(decision["explanation"]["content"]["opted_out"])
    locale = compiled.definition.locale
    return HTML.get_template("page.html").render(
        decision=_as_html(decision) if compiled.format == "html" else decision,
        summary=None if opted_out else summary(store, person_id),
        token=token,
        locale=locale,
        currency=compiled.definition.currency,
        words=WORDS[language_of(locale)],
        links=links or {"shop": None, "products": {}},
    )


def _as_html(decision: dict[str, Any]) -> dict[str, Any]:
    """``decision`` with its body and offers marked as HTML, so that the page prints them as
    they are (the sandbox escaped the values in them)."""
    content = {**decision["content"], "body": Markup(decision["content"]["body"])}
    offers = [
        {**o, "title": Markup(o["title"]), "text": Markup(o["text"])} for o in decision["offers"]
    ]
    return {**decision, "content": content, "offers": offers}


def message_page(title: str, text: str, lang: str = "fr") -> str:
    return HTML.get_template("message.html").render(title=title, text=text, lang=lang)


def record_nps(
    store: Store,
    token: str,
    score: Any,
    comment: str | None,
    *,
    now: datetime,
    settings: Settings,
) -> str:
    """Store the NPS answer (0-10) of the token's person; returns the answer id, the same for
    every answer through one link (the latest replaces the earlier)."""
    person_id = read_token(
        token, now=now, secret=settings.secret_key, max_days=settings.page_link_max_days
    )
    text = str(score).strip() if score is not None else ""
    # ASCII digits only: "²" is a digit to isdigit() and not to int()
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 10:
        raise InvalidInput(
            f"score {score!r} is not an NPS answer.", hint="choose 0 to 10", field="score"
        )
    if comment is not None and NUL in comment:  # no store keeps it (PostgreSQL fails)
        raise InvalidInput(
            "The comment contains a NUL character.", hint="write the comment again", field="comment"
        )
    answer_id = "page-" + hashlib.sha256(token.encode()).hexdigest()[:40]
    answers = schema.survey_answers
    with store.begin() as conn:
        person = root_of(conn, person_id)
        if person is None:
            raise NotFound("This page does not exist or has expired.", hint="ask for a new link")
        conn.execute(answers.delete().where(answers.c.answer_id == answer_id))
        conn.execute(
            schema.survey_answers.insert().values(
                answer_id=answer_id,
                person_id=person,
                node_id=person_id,
                survey=PLACEMENT,
                metric="nps",
                score=int(text),
                comment=(comment or "").strip()[:4000] or None,
                channel="web",
                store_id=None,
                answered_at=now,
                source="page",
            )
        )
    return answer_id
