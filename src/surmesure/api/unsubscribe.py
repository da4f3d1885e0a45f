"""One-click unsubscribe (RFC 8058): ``POST /u/{channel}/{token}`` records a marketing refusal on
the channel for the person the signed link names (what a mail reader sends for
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, or the button of the page);
``GET /u/{channel}/{token}`` shows that button and changes nothing (a link scanner that
follows links unsubscribes nobody). No key: the signed token is the credential
(:mod:`surmesure.deliver.unsubscribe`). A bad or expired link answers 404 and records nothing.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from surmesure.api.clients import limited
from surmesure.api.personal import PersonalPage
from surmesure.clock import utcnow
from surmesure.decide.pages import message_page
from surmesure.deliver.unsubscribe import person_of, unsubscribe
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect.preferences import WORDS, Language, language

router = APIRouter(tags=["preferences"], dependencies=[Depends(limited("pages"))])

TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Désabonnement",
        "ask": "Ne plus recevoir nos offres par {channel} ?",
        "button": "Me désabonner",
        "done": "C'est noté : vous ne recevrez plus nos offres par {channel}.",
    },
    "en": {
        "title": "Unsubscribe",
        "ask": "Stop receiving our offers by {channel}?",
        "button": "Unsubscribe",
        "done": "Done: you will no longer receive our offers by {channel}.",
    },
}


def _lang(request: Request) -> Language:
    return language(request.query_params.get("lang"), request.headers.get("accept-language"))


def _gone(lang: Language) -> HTMLResponse:
    words = WORDS[lang]
    return PersonalPage(message_page(words["gone_title"], words["gone"]), status_code=404)


def _channel_word(lang: Language, channel: str) -> str:
    return WORDS[lang].get(channel, channel).lower()


@router.get("/u/{channel}/{token}", response_class=HTMLResponse, summary="Unsubscribe page")
async def ask(channel: str, token: str, request: Request) -> HTMLResponse:
    lang = _lang(request)
    settings = request.app.state.settings
    try:
        person_of(token, channel, secret=settings.secret_key)
    except (NotFound, InvalidInput):
        return _gone(lang)
    text = TEXT[lang]
    question = escape(text["ask"].format(channel=_channel_word(lang, channel)))
    form = (
        f'<form method="post"><p>{question}</p>'
        f'<button type="submit">{escape(text["button"])}</button></form>'
    )
    page = message_page(text["title"], "").replace("<p></p>", form)
    return PersonalPage(page)


@router.post("/u/{channel}/{token}", response_class=HTMLResponse, summary="One-click unsubscribe")
async def one_click(channel: str, token: str, request: Request) -> HTMLResponse:
    lang = _lang(request)
    try:
        await run_in_threadpool(
            unsubscribe,
            request.app.state.store,
            token,
            channel,
            now=utcnow(),
            settings=request.app.state.settings,
        )
    except (NotFound, InvalidInput):
        return _gone(lang)
    text = TEXT[lang]
    return PersonalPage(
        message_page(text["title"], text["done"].format(channel=_channel_word(lang, channel)))
    )
