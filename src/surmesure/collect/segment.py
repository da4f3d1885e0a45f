"""Segment-spec messages (identify, track, page, screen, alias, group) and their validation.

The wire format is Segment's, camelCase and all (``userId``, ``anonymousId``, ``messageId``), so
the official SDKs can send unchanged; names become snake_case here, at the boundary. A message is
validated on its own: :func:`validate_messages` splits a batch into the messages that pass and
:class:`Refusal` for the others, each naming the field (``batch[3].userId``) and the fix, so a
bad message never costs its neighbours.

Identifiers a message carries: ``userId`` is the customer id, ``anonymousId`` the device's
anonymous id; an ``identify`` also brings ``traits.email`` and ``traits.phone``; an ``alias``
links ``previousId`` (read as an anonymous id) to ``userId``. Times are read as ISO 8601 and
kept as naive UTC; a time without a zone is UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from surmesure.domain.identity import normalize

MessageType = Literal["identify", "track", "page", "screen", "alias", "group"]
MAX_MESSAGE_BYTES = 32 * 1024
"""Largest message Segment accepts; a larger one is refused on its own."""

Id = Annotated[str, Field(min_length=1, max_length=256)]

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
    timestamp: datetime | None = None
    original_timestamp: datetime | None = Field(default=None, alias="originalTimestamp")
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
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        return when

    def label(self) -> str | None:
        """The event column: a track's event, a page's or screen's name, a group's id."""
        if self.type == "track":
            return self.event
        if self.type in ("page", "screen"):
            return self.name
        if self.type == "group":
            return self.group_id
        return None

    def payload(self) -> dict[str, Any] | None:
        """The properties column: properties, or traits for identify and group, or the
        previous id of an alias."""
        if self.type == "alias":
            return {"previous_id": self.previous_id}
        if self.type in ("identify", "group"):
            return self.traits
        props = dict(self.properties or {})
        if self.type == "page" and self.category is not None:
            props.setdefault("category", self.category)
        return props or None


@dataclass(frozen=True)
class Accepted:
    """A valid message with its identifiers normalized and, for identify, its profile traits."""

    message: Message
    index: int
    identifiers: tuple[tuple[str, str], ...]
    traits: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """A message refused, with the place of the fault and a reason a person can act on."""

    index: int
    message_id: str | None
    field: str | None
    value: str | None
    reason: str
    payload: Any


_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


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


def validate_messages(
    raws: Iterable[Any], *, region: str = "FR", prefix: str = "batch"
) -> tuple[list[Accepted], list[Refusal]]:
    """Validate each of ``raws`` (decoded JSON objects) on its own. ``prefix`` names the
    list in refusals (``batch[2].timestamp``); an empty prefix names the fields alone."""
    accepted: list[Accepted] = []
    refused: list[Refusal] = []
    for index, raw in enumerate(raws):
        place = f"{prefix}[{index}]" if prefix else ""
        if not isinstance(raw, dict):
            refused.append(
                Refusal(index, None, place or None, None, "a message must be a JSON object", raw)
            )
            continue
        try:
            message = _ADAPTER.validate_python(raw)
        except ValidationError as exc:
            refused.append(_refusal(index, place, raw, exc))
            continue
        try:
            ids = _identifiers(message, region)
        except _BadIdentifier as exc:
            where = f"{place}.{exc.field}" if place else exc.field
            reason = f"{where}: {exc.reason}"
            refused.append(Refusal(index, message.message_id, where, exc.value, reason, raw))
            continue
        traits = profile_traits(message.traits) if message.type == "identify" else {}
        accepted.append(Accepted(message, index, ids, traits))
    return accepted, refused
