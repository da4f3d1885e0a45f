"""Decisions over HTTP: ``POST /v1/decide`` and ``GET /v1/people/{person_id}/why``.

``/v1/decide`` and page links need a key with the ``decide`` scope, ``/why`` one with ``read``
(see :mod:`surmesure.api.auth`); each ``/why`` is written to the audit log. A person nobody
knows gets a neutral decision, not an error; an unknown placement is a 404 naming the
placements served; a template that fails to render (past one of the sandbox's limits) is a 422
naming the template, the line and the limit. Templates come from ``SURMESURE_TEMPLATES_DIR``.

``POST /v1/decide`` is answered before FastAPI's routing (:mod:`surmesure.api.direct`), which
would cost a fifth of a decision. A decision served from memory costs a fraction of a
millisecond: it runs on the event loop, where a thread hand-off would cost as much; one that
needs a read from the store (someone the serving cache does not hold yet) is made again in a
thread, where the read waits without holding up the loop. Renders on the loop get only
``SURMESURE_TEMPLATE_ON_LOOP_MS``. A decision whose template needs more is made again in a
thread with the full ``SURMESURE_TEMPLATE_TIME_LIMIT_MS``, and that template's decisions stay
off the loop for :data:`OFF_LOOP_S`; so the loop, which answers every other request, never
waits on a template for more than a few tens of milliseconds, nor on the store.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from surmesure.api.auth import authorize, presented_key, require
from surmesure.api.body import read_json
from surmesure.api.direct import direct
from surmesure.collect import bounds
from surmesure.config import Settings
from surmesure.decide.content import CompiledTemplate
from surmesure.decide.decisions import why
from surmesure.decide.library import Library, library_for
from surmesure.decide.sandbox import Overtime, on_loop
from surmesure.decide.service import (
    DecideRequest,
    Recommender,
    decide,
    serves_from_memory,
)
from surmesure.decide.serving import Serving
from surmesure.decide.serving_cache import Miss, held_only
from surmesure.errors import InvalidInput
from surmesure.protect import audit
from surmesure.protect.keys import Principal
from surmesure.unify.profile import MAX_ID

router = APIRouter(tags=["decide"])
DECIDE_HINT = "send placement and one of person_id, anonymousId, customer_id"
#: seconds a template that overran its time on the event loop renders in threads before the
#: loop tries it again (the overrun may have been a cold cache rather than the template)
OFF_LOOP_S = 30.0
#: the threads decisions served from memory are made in when their template is slow: few, so
#: that they share the interpreter with the event loop rather than crowd it out (a decision
#: from the store, which mostly waits on it, uses the common pool)
RENDERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render")
#: the threads decisions whose person must be read first are made in: enough that the misses
#: arriving while a read is in flight wait together, and are read together after it (see
#: :meth:`~surmesure.decide.serving.Serving.load`)
READS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="read")


class DecideBody(BaseModel):
    """Who, where and in what context. Give one of person_id, anonymous_id, customer_id."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    placement: Annotated[str, Field(min_length=1, max_length=64)]
    person_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    anonymous_id: str | None = Field(default=None, alias="anonymousId", max_length=256)
    customer_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    products: Annotated[int, Field(ge=0, le=50)] = 4


MAX_WHY_DAYS = 3660
PersonId = Annotated[int, Path(ge=1, le=MAX_ID, description="A person id.")]


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload, default=str), media_type="application/json")


def library(request: Request) -> Library:
    """The app's templates (``app.state.templates`` when set, else the configured folder)."""
    found = getattr(request.app.state, "templates", None)
    if not isinstance(found, Library):
        found = request.app.state.templates = library_for(request.app.state.settings)
    return found


def recommender(request: Request) -> Recommender | None:
    return getattr(request.app.state, "recommender", None)


@router.post(
    "/v1/decide",
    summary="Content, offers and products for a person and placement",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": DecideBody.model_json_schema(by_alias=True)}
            },
        }
    },
)
@direct("decide")
async def post_decide(request: Request) -> Response:
    await authorize(request, presented_key(request), "decide")
    raw = await read_json(request, request.app.state.settings.max_request_bytes)
    fault = bounds.fault(raw)
    if fault is not None:
        where = fault[0] or "body"
        raise InvalidInput(f"{where}: {fault[1]}", hint=DECIDE_HINT, field=where)
    try:
        body = DecideBody.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "body"
        raise InvalidInput(
            f"{where}: {error['msg']}",
            hint=DECIDE_HINT,
            field=where,
        ) from None
    compiled = library(request).for_placement(body.placement)
    return _json(
        await decision(
            request,
            DecideRequest(
                placement=body.placement,
                person_id=body.person_id,
                anonymous_id=body.anonymous_id,
                customer_id=body.customer_id,
                context=body.context,
                products=body.products,
            ),
            compiled,
        )
    )


async def decision(
    request: Request, asked: DecideRequest, compiled: CompiledTemplate
) -> dict[str, Any]:
    """The decision ``asked`` with ``compiled``, made on the event loop or in a thread (see
    the module)."""
    settings: Settings = request.app.state.settings
    serving: Serving = request.app.state.serving
    if serving.view_or_none() is None:
        await run_in_threadpool(serving.ensure_started, library(request).metrics())
    call = partial(
        decide,
        request.app.state.store,
        asked,
        compiled,
        recommender=recommender(request),
        serving=serving,
        time_limit_s=settings.template_time_limit_ms / 1000,
    )
    if not serves_from_memory(compiled):
        return await run_in_threadpool(call)
    if _on_loop(compiled, settings):
        try:
            with on_loop(settings.template_on_loop_ms / 1000), held_only():
                return call()
        except Overtime:
            compiled.off_loop_until = time.monotonic() + OFF_LOOP_S
        except Miss:  # someone to read from the store first: the read waits in a thread
            return await asyncio.get_running_loop().run_in_executor(READS, call)
    return await asyncio.get_running_loop().run_in_executor(RENDERS, call)


def _on_loop(compiled: CompiledTemplate, settings: Settings) -> bool:
    """Whether a decision of ``compiled`` is made on the event loop (see the module)."""
    return settings.template_on_loop_ms > 0 and compiled.off_loop_until <= time.monotonic()


@router.get("/v1/people/{person_id}/why", summary="Decisions recently made for a person")
async def get_why(
    person_id: PersonId,
    request: Request,
    days: Annotated[int | None, Query(ge=1, le=MAX_WHY_DAYS)] = None,
    principal: Principal = Depends(require("read")),
) -> Response:
    window = days if days is not None else request.app.state.settings.decision_log_days
    await run_in_threadpool(request.app.state.serving.flush)  # decisions written behind
    found = await run_in_threadpool(why, request.app.state.store, person_id, days=window)
    await run_in_threadpool(
        audit.record,
        request.app.state.store,
        principal.actor,
        "why",
        person_id=person_id,
        detail={"days": window, "decisions": len(found)},
    )
    return _json({"person_id": person_id, "days": window, "decisions": found})
