"""What the SMS gateway calls: delivery reports (``GET /v1/sms/reports``, the ``dlr-url`` of
each message) and the messages phones send (``GET /v1/sms/inbound``, an ``sms-service``
``get-url``). No API key: a report is believed when it carries the signature of its message
id, an inbound message when it carries the gateway's ``key``
(:func:`surmesure.deliver.sms.inbound_key`); anything else answers 404 and records nothing.

Kannel configuration for the inbound side::

    group = sms-service
    keyword = default
    catch-all = true
    max-messages = 0
    get-url = "https://crm.example.com/v1/sms/inbound?key=KEY&from=%p&text=%a&id=%I"
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from surmesure.decide.service import utcnow
from surmesure.deliver import replies, reports
from surmesure.deliver.sms import INBOUND_PATH, REPORTS_PATH, inbound_key
from surmesure.errors import NotFound

router = APIRouter(tags=["sms"])


@router.get(REPORTS_PATH, response_class=PlainTextResponse, summary="SMS delivery report")
async def report(
    request: Request,
    id: str = Query(max_length=64),
    sig: str = Query(max_length=64),
    status: str = Query(max_length=8),
) -> PlainTextResponse:
    settings = request.app.state.settings
    found = reports.read_kannel(id, sig, status, secret=settings.secret_key)
    await run_in_threadpool(
        reports.record_report, request.app.state.store, id, "sms", found, utcnow()
    )
    return PlainTextResponse(found)


@router.get(INBOUND_PATH, response_class=PlainTextResponse, summary="SMS from a phone")
async def inbound(
    request: Request,
    key: str = Query(max_length=64),
    sender: str = Query(alias="from", max_length=32),
    text: str = Query(default="", max_length=2000),
    id: str = Query(default="", max_length=64),
) -> PlainTextResponse:
    settings = request.app.state.settings
    if not hmac.compare_digest(key, inbound_key(settings.secret_key)):
        raise NotFound("No such service.", hint="give the key of the sms-service get-url")
    outcome = await run_in_threadpool(
        replies.handle, request.app.state.store, sender, text, id or "none", utcnow()
    )
    # the body is what smsbox would send back as a reply (none with max-messages = 0)
    return PlainTextResponse("", headers={"X-Outcome": outcome})
