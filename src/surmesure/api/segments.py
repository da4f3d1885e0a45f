"""Segments over HTTP: ``GET /v1/people/{ref}/segments``.

``ref`` is a person id or ``kind:value`` (``email:anna@example.com``). The answer lists the
segments the person is in, as recorded, with ``entered_at``; ``?live=true`` evaluates every
saved definition on the person's data now. An unknown person is a 404 with the usual error
body. A route needs a known key (HTTP Basic user name or ``Authorization: Bearer``; keys are
set with ``SURMESURE_WRITE_KEYS``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from surmesure.api.body import header_key, source_of
from surmesure.config import Settings
from surmesure.segment.person import segments_of

router = APIRouter(prefix="/v1/people", tags=["segments"])


def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return header_key(request)


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload, default=str), media_type="application/json")


@router.get("/{ref}/segments", summary="The segments a person is in, with entered_at")
async def person_segments(ref: str, request: Request, live: bool = False) -> Response:
    settings: Settings = request.app.state.settings
    source_of(_key(request), settings.write_keys)
    now = datetime.now(UTC).replace(tzinfo=None)
    found = await run_in_threadpool(segments_of, request.app.state.store, ref, now, live=live)
    return _json(found)
