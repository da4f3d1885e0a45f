"""Web placements filled in the visitor's browser: the script and its two calls.

- ``GET /web/surmesure.js``: the script (:mod:`surmesure.web.script`), public, with an ETag;
  asked for with ``?v=`` its own version (what :func:`~surmesure.web.script.script_url`
  writes), it may be cached for a year.
- ``POST /v1/web/decide`` ``{"key", "aid", "user", "placements": [...], "context": {...}}``:
  for each placement (at most :data:`MAX_PLACEMENTS`), what the page shows
  (:mod:`surmesure.web.answer`), decided for the visitor the call proves
  (:mod:`surmesure.web.identity`), with ``aid``: the cookie value the page keeps (a new one
  when the one sent did not hold) and ``max_age``, its lifetime in seconds. Only templates of
  the ``web`` channel fill a page, and products are recommended only for a template that
  prints them.
- ``POST /v1/web/events`` ``{"key", "aid", "user", "events": [...]}``: views and clicks
  (:mod:`surmesure.web.events`), stored through collection before the answer (a refused item
  is quarantined); ``aid`` must be one this server issued.

Both take a key of the ``web`` scope, in the body (``key``) or as for any route, and bodies of
at most :data:`MAX_WEB_BYTES`. A page calls them as CORS *simple* requests (``text/plain``,
no credentials: the cookie is the shop's own and travels in the body), so no preflight costs
a round trip. A call from a page (``Origin``) whose origin is not stored with the key is 403
and its answer carries no ``Access-Control-Allow-Origin``: the page cannot read it. An allowed
origin gets itself back in that header. The body has no field to name a person: a key that
ships in public pages decides and reports for its own visitor alone, and never sees an
explanation, a trait or a person id.

Calls count against the key's limit (scope ``web``, ``SURMESURE_RATE_LIMITS``) and the
visitor's: by their signed identity (``SURMESURE_WEB_VISITOR_RATE_LIMIT``), or by address while
they have none (``SURMESURE_WEB_NEW_VISITOR_RATE_LIMIT``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from surmesure.api.auth import authorize, presented_key
from surmesure.api.body import body_schema, read_json
from surmesure.api.clients import ClientLimits
from surmesure.api.decide import decision, library
from surmesure.collect.events import Ingested
from surmesure.collect.writer import EventWriter
from surmesure.config import Settings
from surmesure.decide.personal import DEFAULT_PRODUCTS
from surmesure.decide.service import DecideRequest
from surmesure.errors import Forbidden, InvalidInput, NotFound, TooManyRequests
from surmesure.protect.keys import Principal
from surmesure.web import answer, script
from surmesure.web.events import MAX_EVENTS
from surmesure.web.events import messages as event_messages
from surmesure.web.identity import Visitor, visitor

log = logging.getLogger("surmesure.api")
router = APIRouter(tags=["web"])
MAX_WEB_BYTES = 16_384
MAX_PLACEMENTS = 10
WEB_HINT = (
    "send the key of the page's script tag (data-surmesure-key), its sm_aid cookie as aid and "
    "data-surmesure-user as user; see the route's schema in /docs"
)
Placement = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Proof = Annotated[str, Field(max_length=512)]
LOCALE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]+)*$"


class WebContext(BaseModel):
    """What the page says of itself; the decision's channel is always ``web``."""

    model_config = ConfigDict(extra="forbid")

    page: Annotated[str, Field(max_length=2048)] | None = None
    locale: Annotated[str, Field(max_length=16, pattern=LOCALE)] | None = None
    time_zone: Annotated[str, Field(max_length=64)] | None = None


class WebDecideBody(BaseModel):
    """The page's placements, for the visitor its proofs name."""

    model_config = ConfigDict(extra="forbid")

    key: Proof | None = None
    aid: Proof | None = None
    user: Proof | None = None
    placements: Annotated[list[Placement], Field(min_length=1, max_length=MAX_PLACEMENTS)]
    context: WebContext = Field(default_factory=WebContext)


class WebEventsBody(BaseModel):
    """Views and clicks of the placements the page filled."""

    model_config = ConfigDict(extra="forbid")

    key: Proof | None = None
    aid: Proof
    user: Proof | None = None
    events: Annotated[list[Any], Field(min_length=1, max_length=MAX_EVENTS)]


Body = TypeVar("Body", WebDecideBody, WebEventsBody)


def _web(endpoint: Any) -> Any:
    endpoint.scope = "web"  # read by the OpenAPI and the authorization tests
    return endpoint


async def _caller(request: Request, model: type[Body]) -> tuple[Principal, Body]:
    """The key's principal, from a page of its origins, and the body as ``model``; the key is
    checked before the body is read when it comes in the header."""
    key = presented_key(request)
    principal = None
    if key is not None:
        principal = await authorize(request, key, "web", field="key")
    raw = await read_json(request, MAX_WEB_BYTES)
    if principal is None:
        found = raw.get("key") if isinstance(raw, dict) else None
        principal = await authorize(request, found if isinstance(found, str) else None, "web",
                                    field="key")  # fmt: skip
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() not in principal.origins:
        raise Forbidden(
            f"The key {principal.name!r} may not be used from pages of {origin!r}.",
            hint="add the origin to the key: surmesure key create NAME --scope web --origin "
            "ORIGIN --replace",
            field="origin",
        )
    try:
        return principal, model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "body"
        raise InvalidInput(f"{where}: {error['msg']}", hint=WEB_HINT, field=where) from None


def _count(request: Request, who: Visitor | None) -> None:
    """Count the call against its visitor's limit: their identity, or their address."""
    limits: ClientLimits = request.app.state.web_visitors
    client: ClientLimits = request.app.state.client_limits
    if who is not None:
        wait, setting = limits.wait("visitor", who.key), "SURMESURE_WEB_VISITOR_RATE_LIMIT"
    else:
        wait = limits.wait("new", client.address_of(request))
        setting = "SURMESURE_WEB_NEW_VISITOR_RATE_LIMIT"
    if wait is not None:
        raise TooManyRequests(
            "Too many calls from this visitor.",
            retry_after=wait,
            hint=f"wait {wait} s (Retry-After); the limit is {setting}",
        )


@dataclass(frozen=True, slots=True)
class WebCall(Generic[Body]):
    """An admitted web call: its key's principal, its body, the settings and its visitor."""

    principal: Principal
    body: Body
    settings: Settings
    who: Visitor


async def _admit(request: Request, model: type[Body], *, new_visitor: bool) -> WebCall[Body]:
    """The call as ``model`` (see :func:`_caller`), its visitor counted against their limit
    (:func:`_count`). Without ``new_visitor``, an ``aid`` this server did not issue is refused
    rather than replaced by a new one."""
    principal, body = await _caller(request, model)
    settings: Settings = request.app.state.settings
    who = visitor(settings.secret_key, principal.key_id, body.aid, body.user)
    if who.issued and not new_visitor:  # the id sent did not hold: nobody's events
        raise InvalidInput(
            "aid is not an anonymous id this server issued.",
            hint="send the sm_aid value /v1/web/decide answered",
            field="aid",
        )
    _count(request, None if who.issued else who)
    return WebCall(principal, body, settings, who)


def _answer(request: Request, payload: Any) -> Response:
    headers = {"Cache-Control": "no-store", "Vary": "Origin"}
    origin = request.headers.get("origin")
    if origin is not None:  # an allowed one: _caller refused the others
        headers["Access-Control-Allow-Origin"] = origin
    return Response(orjson.dumps(payload, default=str), headers=headers,
                    media_type="application/json")  # fmt: skip


@router.post(
    "/v1/web/decide",
    summary="What a web page shows in its placements, for its visitor",
    openapi_extra=body_schema(WebDecideBody),
)
@_web
async def web_decide(request: Request) -> Response:
    call = await _admit(request, WebDecideBody, new_visitor=True)
    body, who = call.body, call.who
    context = {k: v for k, v in body.context.model_dump().items() if v is not None}
    context["channel"] = "web"
    shown = []
    for placement in dict.fromkeys(body.placements):
        shown.append(await _placement(request, who, placement, context))
    return _answer(
        request,
        {"aid": who.cookie, "max_age": call.settings.web_cookie_days * 86_400, "placements": shown},
    )


async def _placement(
    request: Request, who: Visitor, placement: str, context: dict[str, Any]
) -> dict[str, Any]:
    """What the page shows in ``placement``: nothing (its own default) for a placement no web
    template serves or whose template fails."""
    try:
        compiled = library(request).for_placement(placement)
    except NotFound:
        return answer.missing(placement)
    if compiled.definition.channel != "web":  # an e-mail's content is not the page's to see
        return answer.missing(placement)
    asked = DecideRequest(
        placement=placement,
        anonymous_id=None if who.customer_id else who.anonymous_id,
        customer_id=who.customer_id,
        context=context,
        # products nobody prints would cost a look in the recommendation model per visitor
        products=DEFAULT_PRODUCTS if compiled.reads_products else 0,
    )
    try:
        text = compiled.definition.output_format == "text"
        return answer.shown(placement, await decision(request, asked, compiled), text=text)
    except InvalidInput as exc:  # a template past its limits: the page keeps its default
        log.warning("web placement %s not filled: %s", placement, exc.code)
        return answer.missing(placement)


@router.post(
    "/v1/web/events",
    summary="Views and clicks of a web page's placements",
    openapi_extra=body_schema(WebEventsBody),
)
@_web
async def web_events(request: Request) -> Response:
    call = await _admit(request, WebEventsBody, new_visitor=False)
    accepted, refused = await run_in_threadpool(
        event_messages, call.who, call.body.events, call.settings.default_country
    )
    writer: EventWriter = request.app.state.writer
    result: Ingested = await writer.write(accepted, refused, source=call.principal.source)
    refused = refused + list(result.refusals)
    payload: dict[str, Any] = {
        "success": not refused,
        "accepted": result.accepted,
        "duplicate": result.duplicate,
    }
    if refused:
        payload["rejected"] = [{"index": r.index, "field": r.field, "reason": r.reason}
                               for r in refused]  # fmt: skip
    stored = result.accepted + result.duplicate
    response = _answer(request, payload)
    if refused and not stored:
        response.status_code = 400
    return response


@router.get("/web/surmesure.js", summary="The web script a shop's pages include")
async def web_script(request: Request) -> Response:
    found = script.current()
    headers = {
        "ETag": f'"{found.version}"',
        "Cache-Control": "public, max-age=31536000, immutable"
        if request.query_params.get("v") == found.version
        else "public, max-age=3600",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.text, headers=headers, media_type="text/javascript; charset=utf-8")
