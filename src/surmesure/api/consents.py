"""Consent over HTTP: ``POST /v1/consents`` records choices, ``GET /v1/people/{ref}/consents``
reads what is in force and the history, with the person's topics, frequency and pause
(``preferences``: :mod:`surmesure.protect.marketing`).

``ref`` (and the body's ``person``) is a person id or ``kind:value`` (``email:anna@example.com``);
an absorbed id answers for the person it was merged into. Recording needs the ``admin`` scope,
reading the ``read`` scope; both are written to the audit log. The rule of what is in force lives in
:mod:`surmesure.protect.consent`, which both routes call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from surmesure.api.auth import require
from surmesure.clock import utcnow
from surmesure.errors import InvalidInput
from surmesure.protect import audit, consent, marketing
from surmesure.protect.keys import Principal

router = APIRouter(tags=["consent"])

# -- routes -------------------------------------------------------------------------------------

Purpose = Literal["marketing", "personalization", "profiling", "analytics"]
Channel = Literal["email", "sms", "phone", "paper", "web", "any"]
FUTURE_SKEW = timedelta(minutes=5)


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    channel: Channel = "any"
    granted: bool


class ConsentBody(BaseModel):
    """Choices of one person, recorded together with one evidence."""

    model_config = ConfigDict(extra="forbid")

    person: Annotated[str, Field(min_length=1, max_length=320)] = Field(
        description="A person id or kind:value (email:anna@example.com)."
    )
    consents: Annotated[list[Choice], Field(min_length=1, max_length=50)]
    evidence: Annotated[str, Field(min_length=1, max_length=512)] = Field(
        description="What proves the choice: a form id, a call reference, a signed document."
    )
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Where the choice was made (default: the key's source)."
    )
    recorded_at: AwareDatetime | None = Field(
        default=None, description="When the choice was made (default: now); not in the future."
    )


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, default=str), status, media_type="application/json")


@router.post("/v1/consents", status_code=201, summary="Record a person's consent choices")
async def post_consents(
    body: ConsentBody,
    request: Request,
    principal: Principal = Depends(require("admin")),
) -> Response:
    now = utcnow()
    at = now
    if body.recorded_at is not None:
        try:
            at = body.recorded_at.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 has no UTC time
            at = datetime.min
        if not 1900 <= at.year <= 2200:
            raise InvalidInput(
                "recorded_at is outside 1900-2200.",
                field="recorded_at",
                hint="give the time the choice was made, or leave it out for now",
            )
        if at > now + FUTURE_SKEW:
            raise InvalidInput(
                "recorded_at is in the future.",
                field="recorded_at",
                hint="give the time the choice was made, or leave it out for now",
            )
    changes = [(c.purpose, c.channel, c.granted) for c in body.consents]
    store = request.app.state.store

    def record() -> dict[str, Any]:
        with store.begin() as conn:
            done = consent.record_for(
                conn,
                body.person,
                changes,
                source=body.source or principal.source,
                evidence=body.evidence,
                recorded_at=at,
            )
            audit.record_in(
                conn,
                principal.actor,
                "consent.record",
                person_id=done["person_id"],
                detail={"consents": len(changes)},
            )
            return done

    return _json(await run_in_threadpool(record), 201)


@router.get("/v1/people/{ref}/consents", summary="A person's consents in force and history")
async def person_consents(
    ref: Annotated[
        str, Path(min_length=1, max_length=320, description="A person id or kind:value.")
    ],
    request: Request,
    principal: Principal = Depends(require("read")),
) -> Response:
    store = request.app.state.store

    def read() -> dict[str, Any]:
        at = utcnow()
        with store.connect() as conn:
            found = consent.consents_of(conn, ref, at)
            found["preferences"] = marketing.preferences_of(
                conn, found["person_id"], at, request.app.state.settings.preference_topics
            )
        audit.record(store, principal.actor, "consents", person_id=found["person_id"])
        return found

    return _json(await run_in_threadpool(read))
