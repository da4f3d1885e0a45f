"""Segment-compatible collection: ``/v1/batch``, ``/v1/identify``, ``/v1/track``, ``/v1/page``,
``/v1/screen``, ``/v1/alias``, ``/v1/group``.

A call answers 200 only once its messages are committed (see
:mod:`surmesure.collect.writer`); the same ``messageId`` sent twice is stored once. A message
that fails validation is kept in the quarantine with its reason, named by its field
(``batch[3].userId``) in the answer's ``rejected`` list, while the valid messages of the same
batch are stored. A call that stored something answers 200 even when some of its messages were
refused (``success`` is then false): the SDKs treat any 4xx as "the whole batch failed" and would
report stored messages as lost; they neither drop nor resend what was kept. A call that stored
nothing answers 400. A missing or unknown key is 401, a key without the ``collect`` scope 403
(see :mod:`surmesure.api.auth`), a body over the size limit 413.

A ``POST`` to one of these routes is answered before FastAPI's routing
(:mod:`surmesure.api.direct`): it costs more than the endpoint itself for a call of one event,
the most frequent call of all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from surmesure.api.auth import authorize, presented_key
from surmesure.api.body import body_key, read_json
from surmesure.api.direct import direct
from surmesure.collect.events import Ingested
from surmesure.collect.segment import Message, Refusal, validate_messages
from surmesure.collect.writer import EventWriter
from surmesure.config import Settings
from surmesure.errors import InvalidInput

router = APIRouter(prefix="/v1", tags=["collect"])

MESSAGE_SCHEMA = Message.model_json_schema(by_alias=True)
BATCH_SCHEMA = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": MESSAGE_SCHEMA},
        "context": {"type": "object"},
        "writeKey": {"type": "string"},
        "sentAt": {"type": "string", "format": "date-time"},
    },
}


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _collect(
    request: Request,
    raws: list[Any],
    prefix: str,
    source: str,
    shared: dict[str, Any] | None = None,
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    writer: EventWriter = request.app.state.writer
    accepted, refused = validate_messages(
        raws, region=settings.default_country, prefix=prefix, shared=shared
    )
    result: Ingested = await writer.write(accepted, refused, source=source)
    refused = refused + [_placed(r, prefix) for r in result.refusals]
    body: dict[str, Any] = {
        "success": not refused,
        "accepted": result.accepted,
        "duplicate": result.duplicate,
    }
    if not refused:
        return JSONResponse(body)
    first = refused[0]
    body["error"] = InvalidInput(
        f"{len(refused)} of {len(raws)} message(s) refused; the first: {first.reason}",
        hint="fix the field named and send the refused messages again; the others are stored",
        field=first.field,
    ).to_dict()
    body["rejected"] = [_refusal(r) for r in refused]
    stored = result.accepted + result.duplicate
    return JSONResponse(body, status_code=200 if stored else 400)


def _placed(r: Refusal, prefix: str) -> Refusal:
    """A refusal made while storing, its field placed in the batch (``batch[3].properties``)."""
    if not prefix or r.field is None:
        return r
    field = f"{prefix}[{r.index}].{r.field}"
    return dataclasses.replace(r, field=field, reason=f"{prefix}[{r.index}].{r.reason}")


def _refusal(r: Refusal) -> dict[str, Any]:
    return {"index": r.index, "messageId": r.message_id, "field": r.field, "reason": r.reason}


async def _source_and_body(request: Request) -> tuple[str, Any]:
    """The source of the caller's key and the body; the key is checked before the body is
    read when it comes in the header."""
    settings: Settings = request.app.state.settings
    key = presented_key(request)
    if key is not None:
        principal = await authorize(request, key, "collect", field="writeKey")
        return principal.source, await read_json(request, settings.max_request_bytes)
    body = await read_json(request, settings.max_request_bytes)
    principal = await authorize(request, body_key(body), "collect", field="writeKey")
    return principal.source, body


_collects = direct("collect")


@router.post("/batch", openapi_extra=_body_doc(BATCH_SCHEMA))
@_collects
async def batch(request: Request) -> JSONResponse:
    """Many messages of any type in one call (``{"batch": [...]}``); a ``context`` at the top
    is merged under each message's own."""
    source, body = await _source_and_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise InvalidInput(
            "The body has no 'batch' list.",
            hint='send {"batch": [message, ...]}',
            field="batch",
        )
    shared = {k: body[k] for k in ("context", "sentAt") if body.get(k) is not None}
    return await _collect(request, body["batch"], "batch", source, shared)


def _single(kind: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        source, body = await _source_and_body(request)
        if not isinstance(body, dict):
            raise InvalidInput(
                "The body is not a JSON object.", hint="send one message object", field="body"
            )
        return await _collect(request, [{**body, "type": kind}], "", source)

    endpoint.__name__ = kind
    endpoint.__doc__ = f"One ``{kind}`` message."
    return _collects(endpoint)


for _kind in ("identify", "track", "page", "screen", "alias", "group"):
    router.add_api_route(
        f"/{_kind}", _single(_kind), methods=["POST"], openapi_extra=_body_doc(MESSAGE_SCHEMA)
    )
