"""Personal pages: ``GET /p/{token}`` (HTML) and ``POST /p/{token}/nps`` (a form), and
``POST /v1/pages/links`` that makes a link.

A page needs no key: the signed token is the credential, and carries only an opaque person id
(and, for a campaign's link, the campaign). A reloaded page shows what it showed first
(:mod:`surmesure.deliver.web_pages`). A bad, tampered or expired token gets a plain 404 page; a bad
NPS answer a 400 page; every such page speaks the pages' language (their template's
locale). Making a link needs a key with the ``decide`` scope; making a link and opening a page
are written to the audit log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from surmesure.api.auth import require
from surmesure.api.body import body_schema, read_bytes, validated_body
from surmesure.api.clients import limited
from surmesure.api.personal import PersonalPage
from surmesure.clock import utcnow
from surmesure.decide.page_words import WORDS
from surmesure.decide.pages import link, message_page, page_language, record_nps
from surmesure.decide.sandbox import TemplateError
from surmesure.deliver.web_pages import open_page
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import audit, preferences
from surmesure.protect.keys import Principal
from surmesure.store.engine import Store
from surmesure.unify.profile import find_person

router = APIRouter(tags=["pages"])
MAX_FORM_BYTES = 16 * 1024
#: the audit log's actor of a page opened: whoever holds the signed link
LINK_ACTOR = "link:page"


def _say(request: Request, key: str, text: str | None = None, status: int = 200) -> HTMLResponse:
    """A message page in the pages' language: the title ``key``_title, the text ``text`` or
    the words' ``key``."""
    lang = page_language(request.app.state.settings)
    words = WORDS[lang]
    return PersonalPage(
        message_page(words[f"{key}_title"], text or words[key], lang), status_code=status
    )


def _view(store: Store, token: str, settings: Any, recommender: Any) -> str:
    """The page of ``token`` (:func:`surmesure.deliver.web_pages.open_page`), its opening written
    to the audit log (the page shows personal data to whoever holds the link)."""
    now = utcnow()
    html, person_id = open_page(store, token, now=now, settings=settings, recommender=recommender)
    audit.record(store, LINK_ACTOR, "page.view", person_id=person_id, now=now)
    return html


@router.get(
    "/p/{token}",
    response_class=HTMLResponse,
    summary="A personal page",
    dependencies=[Depends(limited("pages"))],
)
async def page(token: str, request: Request) -> HTMLResponse:
    try:
        html = await run_in_threadpool(
            _view,
            request.app.state.store,
            token,
            request.app.state.settings,
            getattr(request.app.state, "recommender", None),
        )
    except NotFound:
        return _say(request, "gone", status=404)
    except TemplateError:  # the page's template went past a limit of the sandbox
        return _say(request, "unavailable", status=422)
    return PersonalPage(html)


@router.post(
    "/p/{token}/nps",
    response_class=HTMLResponse,
    summary="Answer the NPS question",
    dependencies=[Depends(limited("pages"))],
)
async def nps(token: str, request: Request) -> HTMLResponse:
    body = await read_bytes(request, MAX_FORM_BYTES)  # no key is needed: read no more
    if body is None:
        return _say(request, "too_long", status=413)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = {}
        fields = {k: str(v) for k, v in (data.items() if isinstance(data, dict) else [])}
    else:
        form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        fields = {k: v[0] for k, v in form.items() if v}
    try:
        await run_in_threadpool(
            record_nps,
            request.app.state.store,
            token,
            fields.get("score"),
            fields.get("comment"),
            now=utcnow(),
            settings=request.app.state.settings,
        )
    except NotFound:
        return _say(request, "gone", status=404)
    except InvalidInput as exc:
        lang = page_language(request.app.state.settings)
        wrong = "bad_comment" if exc.field == "comment" else "bad_score"
        return _say(request, "incomplete", WORDS[lang][wrong], status=400)
    return _say(request, "thanks")


class LinkBody(BaseModel):
    """Whose page, for how long."""

    model_config = ConfigDict(extra="forbid")

    person: Annotated[str, Field(min_length=1, max_length=320)] = Field(
        description="A person id or kind:value (customer_id:C42)."
    )
    days: Annotated[int, Field(ge=1, le=3660)] = 30
    page: Literal["personal", "preferences"] = Field(
        default="personal", description="The personal page, or the preference centre."
    )


def _page_link(store: Store, body: LinkBody, actor: str, settings: Any) -> dict[str, Any]:
    now = utcnow()
    with store.connect() as conn:
        person_id = find_person(conn, body.person).person_id
    make = preferences.link if body.page == "preferences" else link
    url = make(person_id, days=body.days, now=now, settings=settings)
    audit.record(
        store,
        actor,
        "preferences.link" if body.page == "preferences" else "page.link",
        person_id=person_id,
        detail={"days": body.days},
    )
    return {
        "person_id": person_id,
        "url": url,
        "expires_at": (now + timedelta(days=body.days)).isoformat(timespec="seconds"),
    }


@router.post(
    "/v1/pages/links",
    summary="A signed, expiring link to a person's page",
    openapi_extra=body_schema(LinkBody),
)
async def page_link(
    request: Request,
    principal: Principal = Depends(require("decide")),
    body: LinkBody = Depends(validated_body(LinkBody)),
) -> dict[str, Any]:
    return await run_in_threadpool(
        _page_link, request.app.state.store, body, principal.actor, request.app.state.settings
    )
