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
    get-url = "https://crm.example.com/v1/sms/inbound?key=KEY&from=%p&text=%a&charset=%C&id=%I"

and ``mo-recode = true`` in the smsbox group, so that a reply typed in UCS-2 (``ARRÊT``: Ê is
not GSM-7) arrives as UTF-8 or Latin-1, which ``charset`` names.

Kannel sends no header, so the key stays in the URL: no log line of this server prints a query
string (:mod:`surmesure.api.guard`, :func:`surmesure.cli.serve.server_options`); a proxy in
front of it and Kannel's own logs may, so keep them as private as the key.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from surmesure.api.clients import limited
from surmesure.clock import utcnow
from surmesure.deliver import replies, reports
from surmesure.deliver.sms import INBOUND_PATH, REPORTS_PATH, inbound_key
from surmesure.errors import NotFound

router = APIRouter(tags=["sms"], dependencies=[Depends(limited("gateways"))])


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
    charset: str = Query(default="UTF-8", max_length=32),
    id: str = Query(default="", max_length=64),
) -> PlainTextResponse:
    settings = request.app.state.settings
    if not hmac.compare_digest(key.encode(), inbound_key(settings.secret_key).encode()):
        raise NotFound("No such service.", hint="give the key of the sms-service get-url")
    words = _decoded(request.scope.get("query_string", b""), charset) or text
    outcome = await run_in_threadpool(
        replies.handle, request.app.state.store, sender, words, id or "none", utcnow()
    )
    # the body is what smsbox would send back as a reply (none with max-messages = 0)
    return PlainTextResponse("", headers={"X-Outcome": outcome})


def _decoded(query: bytes, charset: str) -> str | None:
    """The ``text`` parameter's bytes read in the charset Kannel names (the parsed parameter
    was read as UTF-8, which a Latin-1 text is not)."""
    for key, value in parse_qsl(query.decode("latin-1"), encoding="latin-1"):
        if key == "text":
            raw = value.encode("latin-1")
            try:
                return raw.decode(charset)
            except (LookupError, UnicodeDecodeError):
                return raw.decode("utf-8", errors="replace")
    return None
