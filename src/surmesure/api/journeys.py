"""Journeys over HTTP, for a key with the ``admin`` scope (see :mod:`surmesure.api.auth`).

``GET /v1/journeys/schema`` is the JSON Schema of a journey document; ``PUT /v1/journeys``
publishes a document (JSON) as the version new people enter; ``GET /v1/journeys/{name}``
reads the version in force; ``POST /v1/journeys/{name}/{action}`` pauses, resumes or archives
it; ``GET /v1/journeys/{name}/status`` is its funnel and ``GET
/v1/journeys/{name}/people/{ref}`` where one person is and why. Each answer is the JSON the
matching ``surmesure journey ... --json`` prints; refusals are the usual error body.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from surmesure.api.auth import require
from surmesure.api.body import read_json
from surmesure.clock import utcnow
from surmesure.journeys import published, service
from surmesure.journeys.document import json_schema, parse
from surmesure.protect.keys import Principal

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])
MAX_DOCUMENT_BYTES = 1_048_576


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload, default=str), media_type="application/json")


@router.get("/schema", summary="The JSON Schema of a journey document")
async def journey_schema(_: Principal = Depends(require("admin"))) -> Response:
    return _json(json_schema())


@router.put("", summary="Publish a journey document as the version new people enter")
async def publish_journey(request: Request, _: Principal = Depends(require("admin"))) -> Response:
    definition = parse(await read_json(request, MAX_DOCUMENT_BYTES))
    done = await run_in_threadpool(published.publish, request.app.state.store, definition, utcnow())
    return _json({"name": done.name, "version": done.version, "changed": done.changed})


@router.get("/{name}", summary="The journey document in force, with its version and status")
async def journey(
    name: str, request: Request, _: Principal = Depends(require("admin"))
) -> Response:
    def read() -> dict[str, Any]:
        with request.app.state.store.connect() as conn:
            row = published.head(conn, name)
            definition = published.version_of(conn, name, int(row.version))
        return {
            "name": name,
            "version": int(row.version),
            "status": str(row.status),
            "definition": definition.document(),
        }

    return _json(await run_in_threadpool(read))


@router.post("/{name}/{action}", summary="Pause, resume or archive a journey")
async def change_journey(
    name: str, action: str, request: Request, _: Principal = Depends(require("admin"))
) -> Response:
    return _json(
        await run_in_threadpool(service.change, request.app.state.store, name, action, utcnow())
    )


@router.get("/{name}/status", summary="The journey's funnel: steps, ends, goals, splits")
async def journey_status(
    name: str, request: Request, _: Principal = Depends(require("admin"))
) -> Response:
    return _json(await run_in_threadpool(service.status, request.app.state.store, name))


@router.get("/{name}/people/{ref}", summary="Where one person is in the journey, and why")
async def journey_person(
    name: str, ref: str, request: Request, _: Principal = Depends(require("admin"))
) -> Response:
    return _json(await run_in_threadpool(service.person, request.app.state.store, name, ref))
