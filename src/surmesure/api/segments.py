"""Segments over HTTP: ``GET /v1/people/{ref}/segments``.

``ref`` is a person id or ``kind:value`` (``email:anna@example.com``). The answer lists the
segments the person is in, as recorded, with ``entered_at``; ``?live=true`` evaluates every
saved definition on the person's data now. An unknown person is a 404 with the usual error
body. The route needs a key with the ``read`` scope (see :mod:`surmesure.api.auth`); each call
is written to the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from surmesure.api.auth import require
from surmesure.clock import utcnow
from surmesure.protect import audit
from surmesure.protect.keys import Principal
from surmesure.segment.person import segments_of

router = APIRouter(prefix="/v1/people", tags=["segments"])
PersonRef = Annotated[
    str, Path(min_length=1, max_length=320, description="A person id or kind:value.")
]


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload, default=str), media_type="application/json")


@router.get("/{ref}/segments", summary="The segments a person is in, with entered_at")
async def person_segments(
    ref: PersonRef,
    request: Request,
    live: bool = False,
    principal: Principal = Depends(require("read")),
) -> Response:
    now = utcnow()
    found = await run_in_threadpool(segments_of, request.app.state.store, ref, now, live=live)
    await run_in_threadpool(
        audit.record,
        request.app.state.store,
        principal.actor,
        "segments",
        person_id=found["person_id"],
        detail={"live": live},
    )
    return _json(found)
