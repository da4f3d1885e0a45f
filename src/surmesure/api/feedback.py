"""``POST /v1/email/feedback``: a bounce (RFC 3464 DSN) or a complaint (RFC 5965 ARF), the raw
message as the body (``message/rfc822``), from a mailbox forwarder (a Postfix pipe to
``curl -H "Authorization: Bearer KEY" --data-binary @- https://crm.example.com/v1/email/feedback``)
or a provider's webhook. The key is :func:`surmesure.deliver.feedback.feedback_key`, sent as
``Authorization: Bearer KEY``; a sender that cannot set a header may pass ``?key=KEY`` (no
log line of the server prints a query string: :mod:`surmesure.api.guard`). Without the key
the route answers 404 and records nothing. Answers ``{"outcome": ...}``: ``recorded``,
``opted_out``, ``unknown`` (not about our mail) or ``ignored`` (neither a bounce nor a
complaint).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from surmesure.api.auth import presented_key
from surmesure.api.body import read_bytes
from surmesure.api.clients import limited
from surmesure.clock import utcnow
from surmesure.deliver import feedback
from surmesure.errors import NotFound, PayloadTooLarge

router = APIRouter(tags=["email"], dependencies=[Depends(limited("gateways"))])
MAX_REPORT_BYTES = 2 * 1024 * 1024


@router.post("/v1/email/feedback", summary="E-mail bounce or complaint")
async def receive(
    request: Request, key: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, str]:
    settings = request.app.state.settings
    given = presented_key(request) or key or ""
    if not hmac.compare_digest(given.encode(), feedback.feedback_key(settings.secret_key).encode()):
        raise NotFound(
            "No such service.", hint="send the feedback key as 'Authorization: Bearer KEY'"
        )
    raw = await read_bytes(request, MAX_REPORT_BYTES)
    if raw is None:
        raise PayloadTooLarge(
            "This report is larger than 2 MB.", hint="send the report without attachments"
        )
    found = await run_in_threadpool(feedback.read, raw)  # up to 2 MB to parse
    if found is None:
        return {"outcome": "ignored"}
    outcome = await run_in_threadpool(
        feedback.apply, request.app.state.store, found, settings=settings, now=utcnow()
    )
    return {"outcome": outcome}
