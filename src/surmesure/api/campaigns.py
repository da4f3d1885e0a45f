"""Campaigns over HTTP, for a key with the ``admin`` scope (see :mod:`surmesure.api.auth`).

``PUT /v1/campaigns`` saves a document (JSON; an MJML body goes inline as ``html``), ``GET
/v1/campaigns/{name}`` reads the version in force, ``GET /v1/campaigns/{name}/preview?person=REF``
says what a person would get and why, ``POST /v1/campaigns/{name}/send`` plans, records and
sends (``?dry_run=true``: plans and counts, writes nothing), ``GET
/v1/campaigns/{name}/status`` counts the outbox, and ``GET /v1/campaigns/{name}/results``
(``?by=SEGMENT``, repeatable) measures it against its control group. Each answer is the
JSON the matching ``surmesure campaign ... --json`` prints; refusals are the usual error body.

``POST /v1/campaigns/{name}/calls`` hands the call centre its due call tasks, ranked by
expected value with the script rendered per person (:func:`surmesure.deliver.service.
call_list`); each task is handed over once. It needs the ``calls`` scope (or ``admin``): a call
centre is an outside party that must read the phone numbers and scripts of its tasks, and
nothing else; an ``admin`` key would also let it save and send campaigns and read every
person. Each list handed over is written to the audit log. The centre posts the outcomes back
with the same scope: ``POST /v1/campaigns/{name}/calls/outcomes`` ``{"outcomes": [{"person_id",
"outcome", "called_at", "message_id"}]}``, recorded as ``campaign calls import`` records a file
(a bad row goes to the quarantine with its reason, origin ``api``), but only of the call tasks
of that campaign handed over: the key cannot record activity or an opt-out for anyone else.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from surmesure.api.auth import require
from surmesure.api.body import read_json
from surmesure.clock import utcnow
from surmesure.deliver import documents, results, service
from surmesure.deliver.calls import outcomes_posted
from surmesure.protect import audit
from surmesure.protect.keys import Principal

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
MAX_DOCUMENT_BYTES = 1_048_576


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload, default=str), media_type="application/json")


@router.put("", summary="Save a campaign document as a new version")
async def save_campaign(
    request: Request, principal: Principal = Depends(require("admin"))
) -> Response:
    definition = documents.without_files(
        documents.parse(await read_json(request, MAX_DOCUMENT_BYTES))
    )
    saved = await run_in_threadpool(documents.save, request.app.state.store, definition, utcnow())
    return _json({"name": saved.name, "version": saved.version, "changed": saved.changed})


@router.get("/{name}", summary="The campaign document in force, with its version")
async def campaign(
    name: str, request: Request, _: Principal = Depends(require("admin"))
) -> Response:
    def read() -> dict[str, Any]:
        with request.app.state.store.connect() as conn:
            definition, version = documents.get(conn, name)
        return {"name": name, "version": version, "definition": definition.document()}

    return _json(await run_in_threadpool(read))


@router.get("/{name}/status", summary="The campaign's outbox, by status, channel and reason")
async def campaign_status(
    name: str, request: Request, _: Principal = Depends(require("admin"))
) -> Response:
    return _json(await run_in_threadpool(service.status, request.app.state.store, name))


@router.get("/{name}/results", summary="Treated against control: conversion, revenue, cost and ROI")
async def campaign_results(
    name: str,
    request: Request,
    _: Principal = Depends(require("admin")),
    by: list[str] = Query(
        default=[], description="A saved segment or discovery prefix to break results down by."
    ),
) -> Response:
    return _json(await run_in_threadpool(results.measure, request.app.state.store, name, by))


@router.get("/{name}/preview", summary="What one person would get, on which channel, and why")
async def campaign_preview(
    name: str,
    request: Request,
    person: str = Query(min_length=1, max_length=320, description="A person id or kind:value."),
    principal: Principal = Depends(require("admin")),
) -> Response:
    store = request.app.state.store
    found = await run_in_threadpool(service.preview, store, name, person, utcnow())
    await run_in_threadpool(
        audit.record,
        store,
        principal.actor,
        "campaign_preview",
        person_id=found["person_id"],
        detail={"campaign": name},
    )
    return _json(found)


@router.post("/{name}/send", summary="Plan, record and send (dry_run: plan and count only)")
async def campaign_send(
    name: str, request: Request, _: Principal = Depends(require("admin")), dry_run: bool = False
) -> Response:
    def run() -> dict[str, Any]:
        store, settings = request.app.state.store, request.app.state.settings
        return service.send_configured(store, name, utcnow(), settings, dry_run=dry_run).to_dict()

    return _json(await run_in_threadpool(run))


@router.post("/{name}/calls", summary="Hand the call centre its due call tasks, once")
async def campaign_calls(
    name: str,
    request: Request,
    principal: Principal = Depends(require("calls")),
    limit: int = Query(default=500, ge=1, le=10_000, description="Most tasks handed over."),
) -> Response:
    def run() -> dict[str, Any]:
        store = request.app.state.store
        found = service.call_list(
            store, name, limit=limit, folder=request.app.state.settings.outbox_dir
        )
        audit.record(
            store,
            principal.actor,
            "campaign_calls",
            detail={"campaign": name, "tasks": len(found["tasks"])},
        )
        return found

    return _json(await run_in_threadpool(run))


class OutcomesBody(BaseModel):
    """The outcomes of a campaign's calls, with the columns of the call centre's file."""

    model_config = ConfigDict(extra="forbid")

    outcomes: list[dict[str, str | int | None]] = Field(min_length=1, max_length=10_000)


@router.post("/{name}/calls/outcomes", summary="The outcomes of the campaign's calls")
async def campaign_call_outcomes(
    name: str, body: OutcomesBody, request: Request, _: Principal = Depends(require("calls"))
) -> Response:
    rows = [{k: "" if v is None else str(v) for k, v in row.items()} for row in body.outcomes]

    def run() -> dict[str, Any]:
        store = request.app.state.store
        with store.connect() as conn:
            documents.get(conn, name)  # an unknown campaign is a 404, as elsewhere
        return outcomes_posted(store, name, rows, utcnow()).to_dict()

    return _json(await run_in_threadpool(run))
