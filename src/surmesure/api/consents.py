"""Consent over HTTP: ``POST /v1/consents`` records choices, ``POST /v1/preferences`` records
topics, frequency and pause (:mod:`surmesure.protect.marketing`), ``GET
/v1/people/{ref}/consents`` reads what is in force and the history of both.

``ref`` (and the body's ``person``) is a person id or ``kind:value`` (``email:anna@example.com``);
an absorbed id answers for the person it was merged into. Recording needs the ``admin`` scope,
reading the ``read`` scope; all are written to the audit log. The rule of what is in force lives in
:mod:`surmesure.protect.consent`, which both routes call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from surmesure.api.auth import require
from surmesure.api.body import body_schema, validated_body
from surmesure.clock import utcnow
from surmesure.collect.bounds import no_nul
from surmesure.dispatch import outbox
from surmesure.errors import InvalidInput
from surmesure.protect import audit, consent, marketing
from surmesure.protect.keys import Principal
from surmesure.unify.profile import find_person

router = APIRouter(tags=["consent"])

# -- routes -------------------------------------------------------------------------------------

Purpose = Literal["marketing", "personalization", "profiling", "analytics"]
Channel = Literal["email", "sms", "phone", "paper", "web", "any"]
FUTURE_SKEW = timedelta(minutes=5)
Text = AfterValidator(no_nul)
"""Free text is kept as sent, except a NUL character, which no store keeps."""


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    channel: Channel = "any"
    granted: bool


class Recorded(BaseModel):
    """Who chose, with what evidence, where and when: what every recorded choice carries."""

    model_config = ConfigDict(extra="forbid")

    person: Annotated[str, Field(min_length=1, max_length=320)] = Field(
        description="A person id or kind:value (email:anna@example.com)."
    )
    evidence: Annotated[str, Field(min_length=1, max_length=512), Text] = Field(
        description="What proves the choice: a form id, a call reference, a signed document."
    )
    source: Annotated[str, Field(min_length=1, max_length=64), Text] | None = Field(
        default=None, description="Where the choice was made (default: the key's source)."
    )
    recorded_at: AwareDatetime | None = Field(
        default=None, description="When the choice was made (default: now); not in the future."
    )


class ConsentBody(Recorded):
    """Choices of one person, recorded together with one evidence."""

    consents: Annotated[list[Choice], Field(min_length=1, max_length=50)]


class PreferenceChoice(BaseModel):
    """One preference: a topic in or out, a frequency, or a pause on (with its end) or off."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["topic", "frequency", "pause"]
    value: Annotated[str, Field(min_length=1, max_length=32), Text] = Field(
        description="topic: in or out; frequency: as_it_comes, weekly or monthly; pause: on or off"
    )
    name: Annotated[str, Field(max_length=64), Text] = Field(
        default="", description="The topic's name (topics only)."
    )
    until: AwareDatetime | None = Field(
        default=None, description="When a pause that starts ends (pause on only)."
    )


class PreferenceBody(Recorded):
    """Preferences of one person, recorded together with one evidence."""

    preferences: Annotated[list[PreferenceChoice], Field(min_length=1, max_length=50)]


def _naive(value: AwareDatetime, field: str, hint: str) -> datetime:
    """``value`` as naive UTC, refused outside 1900-2200."""
    try:
        at = value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 has no UTC time
        at = datetime.min
    if not 1900 <= at.year <= 2200:
        raise InvalidInput(f"{field} is outside 1900-2200.", field=field, hint=hint)
    return at


def _recorded_at(given: AwareDatetime | None, now: datetime) -> datetime:
    """When a choice was made: ``given`` (not in the future), else ``now``."""
    hint = "give the time the choice was made, or leave it out for now"
    if given is None:
        return now
    at = _naive(given, "recorded_at", hint)
    if at > now + FUTURE_SKEW:
        raise InvalidInput("recorded_at is in the future.", field="recorded_at", hint=hint)
    return at


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, default=str), status, media_type="application/json")


@router.post(
    "/v1/consents",
    status_code=201,
    summary="Record a person's consent choices",
    openapi_extra=body_schema(ConsentBody),
)
async def post_consents(
    request: Request,
    principal: Principal = Depends(require("admin")),
    body: ConsentBody = Depends(validated_body(ConsentBody)),
) -> Response:
    at = _recorded_at(body.recorded_at, utcnow())
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
            outbox.append(
                store,
                conn,
                outbox.CONSENT,
                [done["person_id"]] * len(changes),
                at=utcnow(),
                details=[f"{purpose}:{channel}" for purpose, channel, _ in changes],
            )
            audit.record_in(
                conn,
                principal.actor,
                "consent.record",
                person_id=done["person_id"],
                detail={"consents": len(changes)},
            )
            return done

    done = await run_in_threadpool(record)
    request.app.state.dispatcher.kick()
    return _json(done, 201)


@router.post(
    "/v1/preferences",
    status_code=201,
    summary="Record a person's preferences",
    openapi_extra=body_schema(PreferenceBody),
)
async def post_preferences(
    request: Request,
    principal: Principal = Depends(require("admin")),
    body: PreferenceBody = Depends(validated_body(PreferenceBody)),
) -> Response:
    """Topics, frequency and pause as the preference centre records them, from another
    touchpoint (a call centre, a shop, a form of your own). A topic must be one of the
    configured topics; a pause that starts needs its end, in the future and within the
    longest pause allowed."""
    now = utcnow()
    at = _recorded_at(body.recorded_at, now)
    settings = request.app.state.settings
    store = request.app.state.store
    ends: list[datetime | None] = []
    for i, choice in enumerate(body.preferences):
        if choice.kind == "topic" and choice.name not in settings.preference_topics:
            raise InvalidInput(
                f"Topic {choice.name!r} is not one of this shop's topics.",
                field=f"preferences[{i}].name",
                hint="use one of: " + ", ".join(settings.preference_topics),
            )
        until = None
        if choice.until is not None:
            until = _naive(choice.until, f"preferences[{i}].until", "give when the pause ends")
        ends.append(until)

    def one(
        i: int, person_id: int, choice: PreferenceChoice, until: datetime | None
    ) -> dict[str, Any]:
        try:
            return marketing.preference_row(
                person_id,
                choice.kind,
                choice.value,
                name=choice.name,
                until=until,
                source=body.source or principal.source,
                evidence=body.evidence,
                recorded_at=at,
                pause_max_days=settings.preference_pause_max_days,
            )
        except InvalidInput as exc:
            # the rule's own field, placed in the body
            raise InvalidInput(
                exc.message, hint=exc.hint, field=f"preferences[{i}].{exc.field}"
            ) from exc

    def record() -> dict[str, Any]:
        with store.begin() as conn:
            person_id = find_person(conn, body.person).person_id
            rows = [
                one(i, person_id, c, until)
                for i, (c, until) in enumerate(zip(body.preferences, ends, strict=True))
            ]
            marketing.record(conn, rows)
            outbox.append(
                store,
                conn,
                outbox.PREFERENCE,
                [person_id] * len(rows),
                at=utcnow(),
                details=[f"{r['kind']}:{r['name']}" for r in rows],
            )
            audit.record_in(
                conn,
                principal.actor,
                "preferences.record",
                person_id=person_id,
                detail={"preferences": len(rows)},
            )
            return {"person_id": person_id, "recorded": rows}

    done = await run_in_threadpool(record)
    request.app.state.dispatcher.kick()
    return _json(done, 201)


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
