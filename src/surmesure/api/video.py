"""Video pages (:mod:`surmesure.deliver.video_pages`): ``GET /v/{token}`` (HTML), its film,
poster and subtitles (``/v/{token}/film.mp4``, ``poster.jpg``, ``subtitles.vtt``; the film
answers HTTP ranges, which browsers need to play and seek), ``POST /v/{token}/events`` (what
the film did, reported by the page's script ``GET /v/player.js``).

No key: the signed token is the credential, and a token only ever opens its own film (found
from the server's record of its person and campaign). A bad, tampered or expired token, or one
without a film, answers a plain 404 with nothing of the reason. The page is a
:class:`~surmesure.api.personal.PersonalPage` whose policy lets it load only this server's
script, film and pictures and report only to this server. An event's body is read up to
:data:`MAX_EVENT_BYTES`; events count against the client's limit of tracked links
(:mod:`surmesure.api.clients`): over it, the answer is the same and nothing is recorded.
The page counts against the client's limit of pages, its files against that of tracked links
(over it: 429). Opening a page is written to the audit log, as a personal page's is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, Response

from surmesure.api.body import read_bytes
from surmesure.api.clients import limited, over_limit
from surmesure.api.personal import PersonalPage
from surmesure.clock import utcnow
from surmesure.decide.page_words import WORDS
from surmesure.decide.pages import message_page, page_language
from surmesure.deliver import video_pages
from surmesure.errors import NotFound, PayloadTooLarge
from surmesure.protect import audit
from surmesure.store.engine import Store

router = APIRouter(tags=["video"])
MAX_EVENT_BYTES = 256
#: the audit log's actor of a video page opened: whoever holds the signed link
LINK_ACTOR = "link:video"
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: this server's script, film and pictures, nothing else."""
PRIVATE_FILE = {"Cache-Control": "no-store, private", "X-Content-Type-Options": "nosniff"}


def _gone(request: Request) -> HTMLResponse:
    """The plain 404 page, in the pages' language."""
    lang = page_language(request.app.state.settings)
    words = WORDS[lang]
    return PersonalPage(message_page(words["gone_title"], words["gone"], lang), status_code=404)


def _view(store: Store, token: str, settings: Any) -> str:
    now = utcnow()
    html, node = video_pages.open_page(store, token, now=now, settings=settings)
    audit.record(store, LINK_ACTOR, "video.view", person_id=node, now=now)
    return html


@router.get("/v/player.js", summary="The video pages' script", include_in_schema=False)
async def player() -> Response:
    return Response(
        video_pages.script(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/v/{token}",
    response_class=HTMLResponse,
    summary="A person's video page",
    dependencies=[Depends(limited("pages"))],
)
async def page(token: str, request: Request) -> HTMLResponse:
    try:
        html = await run_in_threadpool(
            _view, request.app.state.store, token, request.app.state.settings
        )
    except NotFound:
        return _gone(request)
    return PersonalPage(html, headers={"Content-Security-Policy": POLICY})


FILES = {
    "film.mp4": ("film", "video/mp4", "The film of a video page"),
    "poster.jpg": ("poster", "image/jpeg", "The poster of a video page's film"),
    "subtitles.vtt": ("subtitles", "text/vtt", "The subtitles of a video page's film"),
}
"""A video page's files, by the name its address gives them -> their route's name, media type
and summary (the names are those of :data:`surmesure.deliver.video.FILES`)."""


def _file(name: str, media_type: str) -> Callable[[str, Request], Awaitable[Response]]:
    """The route answering the file ``name`` of a page's film, as ``media_type``."""

    async def endpoint(token: str, request: Request) -> Response:
        try:
            path = await run_in_threadpool(
                video_pages.film_file,
                request.app.state.store,
                token,
                name,
                now=utcnow(),
                settings=request.app.state.settings,
            )
        except NotFound:
            return Response(status_code=404, headers=PRIVATE_FILE)
        return FileResponse(path, media_type=media_type, headers=PRIVATE_FILE)

    return endpoint


for _name, (_route, _media_type, _summary) in FILES.items():
    router.add_api_route(
        f"/v/{{token}}/{_name}",
        _file(_name, _media_type),
        methods=["GET"],
        name=_route,
        summary=_summary,
        dependencies=[Depends(limited("links"))],
    )


@router.post("/v/{token}/events", summary="What a video page's film did", status_code=204)
async def events(token: str, request: Request) -> Response:
    body = await read_bytes(request, MAX_EVENT_BYTES)
    if body is None:
        raise PayloadTooLarge(
            f"An event is at most {MAX_EVENT_BYTES} bytes.",
            field="event",
            hint='send {"event": NAME}',
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    event = data.get("event") if isinstance(data, dict) else None
    if await over_limit(request, "links"):
        return Response(status_code=204)
    try:
        await run_in_threadpool(
            video_pages.record_event,
            request.app.state.store,
            token,
            event,
            now=utcnow(),
            settings=request.app.state.settings,
        )
    except NotFound:
        return Response(status_code=404)
    return Response(status_code=204)
