"""Journey documents: how a person enters, the steps they go through, and what ends it.

A journey is a small document (YAML or JSON), validated and versioned like a campaign::

    name: welcome                        # lowercase letters, digits and _ (at most 24)
    entry:                               # one of:
      event: {name: Signed Up, where: {plan: pro}}    # an event, its properties equal
      # segment: {name: lyon_loyal, on: enter}        # entering (or leaving) a segment
      # date: {trait: birthday, days_before: 0}       # a date trait's anniversary
      # schedule: {every_days: 7}                     # everyone, on a schedule
      # near: {radius_km: 2}                          # a location within a store's radius
    re_entry: never                      # or always, or {after_days: 30}
    limit_per_day: 5000                  # most people entering in one UTC day
    goal: {event: Order Completed}       # ends the journey for the person: a conversion
    exit_on: [{event: Unsubscribed}]     # ends it too, checked on every signal
    steps:                               # the first step is where people start
      - id: hello
        send: {channels: {email: {template: welcome}}}   # several channels: `choose` one
        next: pause
      - id: pause
        wait: {days: 2}                  # or {until: "09:30"} in the person's time zone
        next: opened
      - id: opened
        wait_for_event: {event: Order Completed, timeout_hours: 72}
        next: thanks                     # when it happens ...
        timeout: nudge                   # ... or when the timeout runs out
      - id: nudge
        branch: {if: {trait: {name: city, op: eq, value: Lyon}}, then: lyon, else: done}
      - id: lyon
        split: {paths: [{weight: 0.5, next: done}, {weight: 0.5, control: true, next: done}]}
      - id: thanks
        update_trait: {trait: welcomed, value: true}
        next: done
      - id: done
        exit: {reason: finished}

A send names the content of each channel exactly as a campaign does
(:class:`surmesure.domain.campaigns.ChannelContent`) and ``choose: first`` (the first channel
the person can be reached on) or ``best`` (highest channel appetence); ``out_of_stock: STEP``
is taken instead when the person's product (the entry event's ``product_id``) is out of stock.
A webhook step calls ``url`` (signed with the secret key, retried). Every step but ``exit``
names its ``next`` (a wait-for-event also its ``timeout``; a branch its ``then`` and ``else``).

The entry's nodes are in :mod:`.entries`, the steps' in :mod:`.steps`, the checks on the steps
as a graph in :mod:`.graph`; this module puts them together and parses a document. Pure:
references (segments, templates, events) are checked by :mod:`.published`, against what exists,
with the place of the faulty node and the fix.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from surmesure.documents import error_path
from surmesure.errors import InvalidInput
from surmesure.journeys.entries import ENTRY_TAGS, Entry, ReEntry
from surmesure.journeys.graph import check
from surmesure.journeys.model import EventName, Name, Node, Scalar
from surmesure.journeys.steps import STEP_TAGS, Step


class GoalSpec(Node):
    event: EventName


class ExitOn(Node):
    event: EventName
    where: dict[str, Scalar] = Field(default_factory=dict)


class JourneyDefinition(Node):
    name: Name
    description: str = ""
    entry: Entry
    re_entry: Literal["never", "always"] | ReEntry = "never"
    limit_per_day: int | None = Field(None, ge=1)
    goal: GoalSpec | None = None
    exit_on: list[ExitOn] = Field(default_factory=list)
    steps: Annotated[list[Step], Field(min_length=1, max_length=200)]

    @model_validator(mode="after")
    def _graph(self) -> JourneyDefinition:
        check(self.steps)
        return self

    def step(self, step_id: str) -> Step:
        return self.by_id[step_id]

    @cached_property
    def by_id(self) -> dict[str, Step]:
        """The steps by id (computed once: the engine looks steps up at every move)."""
        return {s.id: s for s in self.steps}

    @property
    def first(self) -> str:
        return self.steps[0].id

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove this field (check its spelling)",
    "string_pattern_mismatch": "use lowercase letters, digits and _ (at most 24), e.g. welcome",
    "invalid_step": "write each step as {id: NAME, send|wait|wait_for_event|branch|split|"
    "update_trait|webhook|exit: {...}, next: STEP}",
    "invalid_entry": "write `entry: {event: {name: ...}}` (or segment, date, schedule, near)",
}
_TAGS = {*STEP_TAGS, *ENTRY_TAGS, "trait", "metric", "purchase", "consent", "bucket", "all", "any"}
_MEMBERS = {"ReEntry"}


def parse(document: Any) -> JourneyDefinition:
    """A validated journey; :class:`InvalidInput` naming the first faulty place and the fix."""
    if not isinstance(document, dict):
        raise InvalidInput(
            "A journey document is a mapping.",
            field="(document)",
            hint="write name:, entry: and steps: at the top level",
        )
    try:
        return JourneyDefinition.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        ctx = error.get("ctx") or {}
        loc = tuple(p for p in error["loc"] if not (str(p).startswith("literal[") or p in _MEMBERS))
        path = error_path(loc, _TAGS)
        if ctx.get("field"):
            path = f"{path}.{ctx['field']}" if path != "(document)" else str(ctx["field"])
        place = _place(document, loc)
        hint = str(ctx.get("hint") or _HINTS.get(error["type"], "see the README's journeys"))
        if error["type"] == "literal_error":
            hint = f"use one of: {ctx.get('expected', '')}"
        message = str(ctx.get("reason") or error["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{path}{place}: {message}.", field=path, hint=hint) from exc


def _place(document: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """`` (step 'x')`` when the error is inside a step that has an id."""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = document.get("steps")
        if isinstance(steps, list) and loc[1] < len(steps) and isinstance(steps[loc[1]], dict):
            found = steps[loc[1]].get("id")
            if isinstance(found, str):
                return f" (step {found!r})"
    return ""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a journey document (for editors and the API)."""
    return JourneyDefinition.model_json_schema(by_alias=True)
