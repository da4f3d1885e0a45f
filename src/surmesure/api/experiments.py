"""Experiments over HTTP: ``GET /v1/experiments/{name}`` and ``/v1/experiments/{name}/results``.

A route needs a known key (HTTP Basic user name or ``Authorization: Bearer``; keys are set with
``SURMESURE_WRITE_KEYS``). Results are the JSON that ``surmesure experiment results --json``
prints; undefined figures (NaN) are ``null``.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from surmesure.api.body import header_key, source_of
from surmesure.config import Settings
from surmesure.experiments import get, results

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return header_key(request)


def _authorize(request: Request) -> None:
    settings: Settings = request.app.state.settings
    source_of(_key(request), settings.write_keys)


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload, default=str), media_type="application/json")


@router.get("/{name}", summary="An experiment: definition, status and dates")
async def experiment(name: str, request: Request) -> Response:
    _authorize(request)
    saved = await run_in_threadpool(get, request.app.state.store, name)
    return _json(saved.summary())


@router.get("/{name}/results", summary="Results per metric, every variant against control")
async def experiment_results(
    name: str, request: Request, alpha: float = 0.05, sequential: bool = False
) -> Response:
    _authorize(request)
    res = await run_in_threadpool(
        results, request.app.state.store, name, alpha=alpha, sequential=sequential
    )
    return _json(res.payload())
