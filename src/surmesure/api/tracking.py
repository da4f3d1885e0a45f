"""Opens and clicks of e-mails (:mod:`surmesure.deliver.tracking`): ``GET /t/o/{token}.gif``
answers a 1x1 image and records an open; ``GET /t/c/{token}`` records a click and redirects to
the link's target (302). No key: the signed token is the credential; a bad click token answers
404 and redirects nowhere. A token older than ``SURMESURE_TRACKING_TOKEN_DAYS`` records
nothing; its click still redirects (:func:`surmesure.deliver.tracking.fresh`). So does one
asked for more often than its client's limit allows (:mod:`surmesure.api.clients`): the
person reaches the target, the store is not written."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from surmesure.api.clients import over_limit
from surmesure.clock import utcnow
from surmesure.deliver import tracking
from surmesure.errors import NotFound

router = APIRouter(tags=["email"])


@router.get("/t/o/{token}.gif", summary="E-mail open pixel")
async def opened(token: str, request: Request) -> Response:
    settings = request.app.state.settings
    payload = tracking.read(token, settings.secret_key)
    now = utcnow()
    if (
        payload is not None
        and "u" not in payload
        and tracking.fresh(payload, now, settings.tracking_token_days)
        and not await over_limit(request, "links")
    ):
        await run_in_threadpool(tracking.record, request.app.state.store, payload, "opened", now)
    headers = {"Cache-Control": "no-store, private"}
    return Response(tracking.PIXEL, media_type="image/gif", headers=headers)


@router.get("/t/c/{token}", summary="E-mail link click")
async def clicked(token: str, request: Request) -> RedirectResponse:
    settings = request.app.state.settings
    payload = tracking.read(token, settings.secret_key)
    url = None if payload is None else payload.get("u")
    if payload is None or not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise NotFound("This link does not exist.", hint="open the link from the e-mail again")
    now = utcnow()
    if tracking.fresh(payload, now, settings.tracking_token_days) and not await over_limit(
        request, "links"
    ):
        await run_in_threadpool(tracking.record, request.app.state.store, payload, "clicked", now)
    return RedirectResponse(url, status_code=302)
