"""Experiments over HTTP: ``GET /v1/experiments/{name}`` and ``/v1/experiments/{name}/results``.

A route needs a key with the ``read`` scope (see :mod:`surmesure.api.auth`). Results are the
JSON that ``surmesure experiment results --json`` prints; undefined figures (NaN) are ``null``.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from surmesure.api.auth import require
from surmesure.experiments import get, results

router = APIRouter(
    prefix="/v1/experiments", tags=["experiments"], dependencies=[Depends(require("read"))]
)


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload, default=str), media_type="application/json")


@router.get("/{name}", summary="An experiment: definition, status and dates")
async def experiment(name: str, request: Request) -> Response:
    saved = await run_in_threadpool(get, request.app.state.store, name)
    return _json(saved.summary())


@router.get("/{name}/results", summary="Results per metric, every variant against control")
async def experiment_results(
    name: str, request: Request, alpha: float = 0.05, sequential: bool = False
) -> Response:
    res = await run_in_threadpool(
        results, request.app.state.store, name, alpha=alpha, sequential=sequential
    )
    return _json(res.payload())
