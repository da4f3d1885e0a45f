"""Personal pages: ``GET /p/{token}`` (HTML) and ``POST /p/{token}/nps`` (a form).

No key: the signed token is the credential, and carries only an opaque person id. A bad,
tampered or expired token gets a plain 404 page; a bad NPS answer a 400 page.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from surmesure.decide.pages import message_page, record_nps, render_page
from surmesure.decide.sandbox import TemplateError
from surmesure.decide.service import utcnow
from surmesure.errors import InvalidInput, NotFound

router = APIRouter(tags=["pages"])
MAX_FORM_BYTES = 16 * 1024


def _gone() -> HTMLResponse:
    return HTMLResponse(
        message_page("Page introuvable", "Ce lien n'existe pas ou a expiré."), status_code=404
    )


@router.get("/p/{token}", response_class=HTMLResponse, summary="A personal page")
async def page(token: str, request: Request) -> HTMLResponse:
    try:
        html = await run_in_threadpool(
            render_page,
            request.app.state.store,
            token,
            now=utcnow(),
            settings=request.app.state.settings,
            recommender=getattr(request.app.state, "recommender", None),
        )
    except NotFound:
        return _gone()
    except TemplateError:  # the page's template went past a limit of the sandbox
        return HTMLResponse(
            message_page("Page indisponible", "Cette page ne peut pas s'afficher pour le moment."),
            status_code=422,
        )
    return HTMLResponse(html)


@router.post("/p/{token}/nps", response_class=HTMLResponse, summary="Answer the NPS question")
async def nps(token: str, request: Request) -> HTMLResponse:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return HTMLResponse(
            message_page("Réponse trop longue", "Raccourcissez le commentaire."), 413
        )
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
        return _gone()
    except InvalidInput as exc:
        return HTMLResponse(message_page("Réponse incomplète", exc.message), status_code=400)
    return HTMLResponse(message_page("Merci !", "Votre réponse a bien été enregistrée."))
