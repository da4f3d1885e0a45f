"""Segment-spec messages (identify, track, page, screen, alias, group) and their validation.

The wire format is Segment's, camelCase and all (``userId``, ``anonymousId``, ``messageId``), so
the official SDKs can send unchanged; names become snake_case here, at the boundary. A message is
validated on its own: :func:`validate_messages` splits a batch into the messages that pass and
:class:`Refusal` for the others, each naming the field (``batch[3].userId``) and the fix, so a
bad message never costs its neighbours.

Identifiers a message carries: ``userId`` is the customer id, ``anonymousId`` the device's
anonymous id; an ``identify`` also brings ``traits.email`` and ``traits.phone``; an ``alias``
links ``previousId`` (read as an anonymous id) to ``userId``. Times are read as ISO 8601 text and
kept as naive UTC; a time without a zone is UTC.

Every field Segment defines must have Segment's shape (``context``, ``properties``, ``traits``
and ``integrations`` are objects, times are ISO 8601 text within years 1900 to 2200, the known
parts of ``context`` are objects or text as the spec says), and the whole message must be one
both stores keep (:mod:`surmesure.collect.bounds`: no NUL character, integers within 64 bits,
at most 32 levels deep); anything else is refused with the place of the fault. Fields Segment
does not define are kept out, not refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from surmesure.collect import bounds, ecommerce
from surmesure.domain.identity import normalize
from surmesure.protect import blind
from surmesure.protect.blind import ANONYMOUS_ID_KIND as ANONYMOUS

MessageType = Literal["identify", "track", "page", "screen", "alias", "group"]
MAX_MESSAGE_BYTES = 32 * 1024
"""Largest message Segment accepts; a larger one is refused on its own."""

Id = Annotated[str, Field(min_length=1, max_length=256)]


def _iso_text(value: object) -> object:
    # Segment's times are ISO 8601 text; Pydantic would also read a number as seconds or
    # milliseconds since 1970, a guess this refuses rather than makes
    if isinstance(value, str | datetime):
        return value
    raise ValueError("send the time as ISO 8601 text, e.g. 2026-03-01T10:00:00Z")


def _in_years(value: datetime) -> datetime:
    if bounds.EARLIEST.year < value.year < bounds.LATEST.year:
        return value  # no time zone moves it out of range
    try:
        utc = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    except OverflowError:
        utc = value.replace(tzinfo=None)  # a year-1 time ahead of UTC: out of range anyway
    if not bounds.in_range(utc) or not bounds.in_range(value):
        raise ValueError(bounds.time_reason(value))
    return value


When = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_in_years)]
"""A Segment time: ISO 8601 text, within years 1900 to 2200."""

#: The parts of ``context`` Segment defines, with the JSON type each must have.
CONTEXT_SHAPES: dict[str, type] = {
    **dict.fromkeys(
        (
            "app",
            "campaign",
            "consent",
            "device",
            "library",
            "location",
            "network",
            "os",
            "page",
            "referrer",
            "screen",
            "traits",
            "userAgentData",
        ),
        dict,
    ),
    **dict.fromkeys(("ip", "locale", "timezone", "userAgent", "groupId", "channel"), str),
    "active": bool,
}

#: Segment's reserved identify traits, as the trait names profiles use.
RESERVED_TRAITS = {
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "birthday": "birth_date",
    "gender": "gender",
    "title": "title",
    "username": "username",
    "name": "name",
    "age": "age",
    "website": "website",
    "company": "company",
    "createdAt": "created_at",
}
ADDRESS_TRAITS = {
    "street": "street",
    "city": "city",
    "postalCode": "postcode",
    "postal_code": "postcode",
    "country": "country",
    "state": "state",
}
IDENTIFIER_TRAITS = {"email": "email", "phone": "phone"}


class Message(BaseModel):
    """One Segment message as received; unknown fields are kept out, not refused."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    type: MessageType
    message_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(alias="messageId")
    user_id: Id | None = Field(default=None, alias="userId")
    anonymous_id: Id | None = Field(default=None, alias="anonymousId")
    timestamp: When | None = None
    original_timestamp: When | None = Field(default=None, alias="originalTimestamp")
    sent_at: When | None = Field(default=None, alias="sentAt")
    received_at: When | None = Field(default=None, alias="receivedAt")
    event: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    category: Annotated[str, Field(max_length=256)] | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    previous_id: Id | None = Field(default=None, alias="previousId")
    group_id: Id | None = Field(default=None, alias="groupId")

    @model_validator(mode="after")
    def _required_by_type(self) -> Message:
        if self.user_id is None and self.anonymous_id is None and self.type != "alias":
            raise ValueError("userId or anonymousId is required: send at least one of them")
        if self.type == "track" and self.event is None:
            raise ValueError("event is required on a track call: name what the person did")
        if self.type == "alias" and (self.previous_id is None or self.user_id is None):
            raise ValueError("previousId and userId are both required on an alias call")
        if self.type == "group" and self.group_id is None:
            raise ValueError("groupId is required on a group call")
        return self

    def occurred_at(self, received_at: datetime) -> datetime:
        """When it happened, naive UTC: ``timestamp``, else ``originalTimestamp``, else
        when it was received."""
        when = self.timestamp or self.original_timestamp
        if when is None:
            return received_at
        offset = when.utcoffset()
        if offset is None:
            return when
        # the offset taken off directly: astimezone(UTC) costs a fifth more on Pydantic's
        # time zones, for each collected event
        return (when - offset).replace(tzinfo=None)

    def label(self) -> str | None:
        """The event column: a track's event, a page's or screen's name, a group's id."""
        if self.type == "track":
            return self.event
        if self.type in ("page", "screen"):
            return self.name
        if self.type == "group":
            return self.group_id
        return None

    def payload(self, index_key: bytes) -> dict[str, Any] | None:
        """The properties column: properties, or traits for identify and group, or the
        previous id of an alias as its blind index under ``index_key`` (the store's, kind
        ``anonymous_id``, the index its identifier row holds: never in clear, see
        :mod:`surmesure.protect.blind`)."""
        if self.type == "alias":
            previous = None if self.previous_id is None else str(self.previous_id).strip()
            indexed = None if previous is None else blind.index_with(index_key, ANONYMOUS, previous)
            return {"previous_id": indexed}
        if self.type in ("identify", "group"):
            return self.traits
        props = self.properties or {}
        if self.type == "page" and self.category is not None and "category" not in props:
            return {**props, "category": self.category}
        return props or None


@dataclass(frozen=True, slots=True)  # one a message: slots halve the time a frozen one takes
class Accepted:
    """A valid message with its identifiers normalized and, for identify, its profile traits;
    ``vouched``: identifiers the server itself verified before the message was made (the
    signed visitor of a web page, :mod:`surmesure.web.identity`), never a claim."""

    message: Message
    index: int
    identifiers: tuple[tuple[str, str], ...]
    traits: dict[str, Any]
    vouched: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Refusal:
    """A message refused, with the place of the fault and a reason a person can act on."""

    index: int
    message_id: str | None
    field: str | None
    value: str | None
    reason: str
    payload: Any


_validate = Message.__pydantic_validator__.validate_python
"""``Message.model_validate`` without its Python wrapper (a tenth of a message's validation)."""


def _location(prefix: str, loc: Sequence[int | str]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".")


def _alias(name: int | str) -> int | str:
    fields = Message.model_fields
    if isinstance(name, str) and name in fields and fields[name].alias:
        return str(fields[name].alias)
    return name


def _refusal(index: int, prefix: str, raw: Any, exc: ValidationError) -> Refusal:
    error = exc.errors()[0]
    loc = [_alias(p) for p in error["loc"]]
    if not loc and " " in str(error["msg"]):
        # a rule across fields (model validator) starts its message with the field it needs
        loc = [str(error["msg"]).removeprefix("Value error, ").split(" ", 1)[0]]
    field = _location(prefix, loc) if loc else prefix or None
    value = error.get("input")
    text = None if isinstance(value, dict) or value is None else str(value)[:256]
    message = str(error["msg"]).removeprefix("Value error, ")
    where = f"{field}: " if field else ""
    return Refusal(index, _message_id(raw), field, text, f"{where}{message}", raw)


def _message_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("messageId")
        return str(value)[:128] if value is not None else None
    return None


def profile_traits(traits: dict[str, Any] | None) -> dict[str, Any]:
    """Trait observations of an identify call, named as profiles name them: Segment's
    reserved traits renamed (``firstName`` -> ``first_name``, ``address.postalCode`` ->
    ``postcode``), custom traits kept under their own name; identifiers and empty values left
    out."""
    out: dict[str, Any] = {}
    for key, value in (traits or {}).items():
        if value is None or value == "" or key in IDENTIFIER_TRAITS:
            continue
        if key == "address" and isinstance(value, dict):
            for part, part_value in value.items():
                if part in ADDRESS_TRAITS and part_value not in (None, ""):
                    out[ADDRESS_TRAITS[part]] = part_value
            continue
        out[RESERVED_TRAITS.get(key, key)] = value
    return out


class _BadIdentifier(ValueError):
    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(reason)
        self.field, self.value, self.reason = field, str(value)[:256], reason


def _normalized(kind: str, field: str, value: object, region: str) -> str:
    try:
        return normalize(kind, str(value), region)
    except ValueError as exc:
        raise _BadIdentifier(field, value, str(exc)) from exc


def _identifiers(message: Message, region: str) -> tuple[tuple[str, str], ...]:
    """Normalized ``(kind, value)`` identifiers, sorted; raises :class:`_BadIdentifier`
    naming the field at fault. (The hot path of collection: plain ids skip the general
    normalizer.)"""
    ids: list[tuple[str, str]] = []
    for kind, field, value in (
        ("customer_id", "userId", message.user_id),
        ("anonymous_id", "anonymousId", message.anonymous_id),
        ("anonymous_id", "previousId", message.previous_id if message.type == "alias" else None),
    ):
        if value is not None:
            text = value.strip()
            if not text:
                raise _BadIdentifier(field, value, "empty identifier")
            ids.append((kind, text))
    if message.type == "identify" and message.traits:
        for key, kind in IDENTIFIER_TRAITS.items():
            value = message.traits.get(key)
            if value not in (None, ""):
                ids.append((kind, _normalized(kind, f"traits.{key}", value, region)))
    return tuple(ids) if len(ids) < 2 else tuple(sorted(set(ids)))


def _shape_fault(message: Message) -> tuple[str, str] | None:
    """``(field, reason)`` of a known part of ``context`` (or ``traits.address``) whose JSON
    type is not the one Segment defines, or of an ``Order Completed`` whose properties make
    no order (:mod:`surmesure.collect.ecommerce`); ``None`` when every one has it."""
    for key, value in (message.context or {}).items():
        kind = CONTEXT_SHAPES.get(key)
        if kind is not None and value is not None and not isinstance(value, kind):
            return f"context.{key}", f"must be {_JSON_NAMES[kind]}"
    address = (message.traits or {}).get("address")
    if address is not None and not isinstance(address, dict):
        return "traits.address", "must be an object (street, city, postalCode, country, state)"
    if message.type == "track" and message.event == ecommerce.ORDER_COMPLETED:
        return ecommerce.fault(message.properties)  # it becomes an order: refused by name
    return None


_JSON_NAMES = {dict: "an object", str: "text", bool: "true or false"}


def _shared_fault(shared: dict[str, Any]) -> tuple[str, str] | None:
    """``(field, reason)`` of a batch-level field (``context``, ``sentAt``) without Segment's
    shape, or ``None``."""
    context = shared.get("context")
    if context is not None and not isinstance(context, dict):
        return "context", (
            "context: the batch's context must be an object (it is merged under each message's own)"
        )
    if shared.get("sentAt") is not None:
        try:
            _WHEN.validate_python(shared["sentAt"])
        except ValidationError as exc:
            message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            return "sentAt", f"sentAt: {message}"
    return None


_WHEN: TypeAdapter[datetime] = TypeAdapter(When)


def _merged(raw: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    """``raw`` with the batch's ``context`` under its own (a context of the wrong shape is
    left as sent, to be refused by name)."""
    if not context:
        return raw
    own = raw.get("context")
    if own is None:
        return {**raw, "context": context}
    if isinstance(own, dict):
        return {**raw, "context": {**context, **own}}
    return raw


def validate_messages(
    raws: Iterable[Any],
    *,
    region: str = "FR",
    prefix: str = "batch",
    shared: dict[str, Any] | None = None,
) -> tuple[list[Accepted], list[Refusal]]:
    """Validate each of ``raws`` (decoded JSON objects) on its own. ``prefix`` names the
    list in refusals (``batch[2].timestamp``); an empty prefix names the fields alone.
    ``shared`` holds a batch's own ``context`` (merged under each message's) and ``sentAt``;
    when one of them is malformed, every message is refused naming it."""
    accepted: list[Accepted] = []
    refused: list[Refusal] = []
    batch_fault = _shared_fault(shared) if shared else None
    context = shared.get("context") if shared and batch_fault is None else None
    for index, raw in enumerate(raws):
        if not isinstance(raw, dict):
            place = f"{prefix}[{index}]" if prefix else ""
            refused.append(
                Refusal(index, None, place or None, None, "a message must be a JSON object", raw)
            )
            continue
        if batch_fault is not None:
            field, reason = batch_fault
            refused.append(Refusal(index, _message_id(raw), field, None, reason, raw))
            continue
        raw = _merged(raw, context)
        stored = bounds.fault(raw)
        if stored is not None:
            where = f"{prefix}[{index}].{stored[0]}" if prefix else stored[0]
            reason = f"{where}: {stored[1]}"
            refused.append(Refusal(index, _message_id(raw), where, None, reason, raw))
            continue
        try:
            message = _validate(raw)
        except ValidationError as exc:
            refused.append(_refusal(index, f"{prefix}[{index}]" if prefix else "", raw, exc))
            continue
        shape = _shape_fault(message)
        if shape is not None:
            where = f"{prefix}[{index}].{shape[0]}" if prefix else shape[0]
            reason = f"{where}: {shape[1]}"
            refused.append(Refusal(index, message.message_id, where, None, reason, raw))
            continue
        try:
            ids = _identifiers(message, region)
        except _BadIdentifier as exc:
            where = f"{prefix}[{index}].{exc.field}" if prefix else exc.field
            reason = f"{where}: {exc.reason}"
            refused.append(Refusal(index, message.message_id, where, exc.value, reason, raw))
            continue
        traits = profile_traits(message.traits) if message.type == "identify" else {}
        accepted.append(Accepted(message, index, ids, traits))
    return accepted, refused
