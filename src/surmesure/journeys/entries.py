"""How people enter a journey: on an event, entering or leaving a segment, a date trait, a
schedule, or a location near a store; and when they may enter again. Part of a journey
document (:mod:`.document`)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Discriminator, Field, Tag

from surmesure.journeys.model import EventName, Name, Node, Scalar, one_key


class EventEntry(Node):
    name: EventName
    where: dict[str, Scalar] = Field(
        default_factory=dict, description="Properties the event must carry, equal."
    )


class SegmentEntry(Node):
    name: Name
    on: Literal["enter", "leave"] = "enter"


class DateEntry(Node):
    """A date trait's anniversary (``birthday``) or, with ``after_days``, N days after it
    (``last_order_at``, ``contract_end``)."""

    trait: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    days_before: int = Field(0, ge=0, le=365)
    after_days: int | None = Field(None, ge=0, le=3650)


class ScheduleEntry(Node):
    every_days: int = Field(1, ge=1, le=365)
    at: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "09:00"


class NearEntry(Node):
    radius_km: float = Field(gt=0, le=100)


class EventEntryNode(Node):
    event: EventEntry


class SegmentEntryNode(Node):
    segment: SegmentEntry


class DateEntryNode(Node):
    date: DateEntry


class ScheduleEntryNode(Node):
    schedule: ScheduleEntry


class NearEntryNode(Node):
    near: NearEntry


ENTRY_TAGS = ("event", "segment", "date", "schedule", "near")


Entry: TypeAlias = Annotated[
    Annotated[EventEntryNode, Tag("event")]
    | Annotated[SegmentEntryNode, Tag("segment")]
    | Annotated[DateEntryNode, Tag("date")]
    | Annotated[ScheduleEntryNode, Tag("schedule")]
    | Annotated[NearEntryNode, Tag("near")],
    Discriminator(
        one_key(ENTRY_TAGS),
        custom_error_type="invalid_entry",
        custom_error_message="an entry has one key among " + ", ".join(ENTRY_TAGS),
    ),
]


class ReEntry(Node):
    after_days: int = Field(ge=1, le=3650)
