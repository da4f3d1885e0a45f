"""The preference centre: ``GET /preferences/{token}`` (HTML) and ``POST /preferences/{token}``
(its form). No key: the signed token is the credential (:mod:`surmesure.protect.preferences`);
``?lang=fr|en`` (else the browser's language) picks the language. A bad pause date or frequency
answers 422 with a page saying what to pick, and records nothing."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from surmesure.api.body import read_bytes
from surmesure.api.clients import limited
from surmesure.api.personal import PersonalPage
from surmesure.clock import utcnow
from surmesure.decide.pages import message_page
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import preferences

router = APIRouter(dependencies=[Depends(limited("pages"))], tags=["preferences"])
MAX_FORM_BYTES = 4 * 1024


def _gone(lang: preferences.Language) -> HTMLResponse:
    words = preferences.WORDS[lang]
    return PersonalPage(message_page(words["gone_title"], words["gone"]), status_code=404)


def _lang(request: Request) -> preferences.Language:
    return preferences.language(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )


@router.get("/preferences/{token}", response_class=HTMLResponse, summary="Preference centre")
async def page(token: str, request: Request) -> HTMLResponse:
    lang = _lang(request)
    try:
        html = await run_in_threadpool(
            preferences.render,
            request.app.state.store,
            token,
            now=utcnow(),
            settings=request.app.state.settings,
            lang=lang,
        )
    except NotFound:
        return _gone(lang)
    return PersonalPage(html)


@router.post("/preferences/{token}", response_class=HTMLResponse, summary="Save preferences")
async def save(token: str, request: Request) -> HTMLResponse:
    lang = _lang(request)
    body = await read_bytes(request, MAX_FORM_BYTES)  # no key is needed: read no more
    if body is None:
        words = preferences.WORDS[lang]
        return PersonalPage(message_page(words["title"], words["too_long"]), 413)
    form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    fields = {k: v[0] for k, v in form.items() if v}
    now = utcnow()
    settings = request.app.state.settings
    store = request.app.state.store
    try:
        recorded = await run_in_threadpool(
            preferences.save, store, token, fields, now=now, settings=settings, lang=lang
        )
        words = preferences.WORDS[lang]
        html = await run_in_threadpool(
            preferences.render,
            store,
            token,
            now=now,
            settings=settings,
            lang=lang,
            note=words["saved"] if recorded else words["nothing"],
        )
    except NotFound:
        return _gone(lang)
    except InvalidInput as e:  # a bad date or frequency: the page's own words, nothing saved
        return PersonalPage(message_page(preferences.WORDS[lang]["title"], e.message), 422)
    return PersonalPage(html)
