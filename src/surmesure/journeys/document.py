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

Pure: references (segments, templates, events) are checked by :mod:`.published`, against what
exists, with the place of the faulty node and the fix.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    model_validator,
)

from surmesure.documents import error_path
from surmesure.domain.campaigns import ChannelContent, ChannelName, refuse
from surmesure.domain.segments import Condition
from surmesure.errors import InvalidInput

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")]
StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,22}$")]
Scalar: TypeAlias = StrictBool | StrictInt | StrictFloat | StrictStr
EventName = Annotated[str, Field(min_length=1, max_length=256)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- entry ------------------------------------------------------------------------------------


class EventEntry(_Model):
    name: EventName
    where: dict[str, Scalar] = Field(
        default_factory=dict, description="Properties the event must carry, equal."
    )


class SegmentEntry(_Model):
    name: Name
    on: Literal["enter", "leave"] = "enter"


class DateEntry(_Model):
    """A date trait's anniversary (``birthday``) or, with ``after_days``, N days after it
    (``last_order_at``, ``contract_end``)."""

    trait: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    days_before: int = Field(0, ge=0, le=365)
    after_days: int | None = Field(None, ge=0, le=3650)


class ScheduleEntry(_Model):
    every_days: int = Field(1, ge=1, le=365)
    at: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "09:00"


class NearEntry(_Model):
    radius_km: float = Field(gt=0, le=100)


class EventEntryNode(_Model):
    event: EventEntry


class SegmentEntryNode(_Model):
    segment: SegmentEntry


class DateEntryNode(_Model):
    date: DateEntry


class ScheduleEntryNode(_Model):
    schedule: ScheduleEntry


class NearEntryNode(_Model):
    near: NearEntry


ENTRY_TAGS = ("event", "segment", "date", "schedule", "near")


def _one_key(tags: tuple[str, ...]) -> Any:
    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            found = [k for k in tags if k in value]
            return found[0] if len(found) == 1 else None
        for name in tags:
            if name in type(value).model_fields:
                return name
        return None

    return tag


Entry: TypeAlias = Annotated[
    Annotated[EventEntryNode, Tag("event")]
    | Annotated[SegmentEntryNode, Tag("segment")]
    | Annotated[DateEntryNode, Tag("date")]
    | Annotated[ScheduleEntryNode, Tag("schedule")]
    | Annotated[NearEntryNode, Tag("near")],
    Discriminator(
        _one_key(ENTRY_TAGS),
        custom_error_type="invalid_entry",
        custom_error_message="an entry has one key among " + ", ".join(ENTRY_TAGS),
    ),
]


class ReEntry(_Model):
    after_days: int = Field(ge=1, le=3650)


# -- steps ------------------------------------------------------------------------------------


class SendSpec(_Model):
    channels: Annotated[dict[ChannelName, ChannelContent], Field(min_length=1)]
    choose: Literal["first", "best"] = Field(
        "first",
        description="first: the first channel reachable, in the order written; best: "
        "the channel of highest appetence",
    )
    purpose: Literal["marketing", "service"] = "marketing"


class WaitSpec(_Model):
    days: float = Field(0, ge=0, le=365)
    hours: float = Field(0, ge=0, le=24 * 365)
    minutes: float = Field(0, ge=0, le=60 * 24)
    until: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = Field(
        None, description="A local time (HH:MM) in the person's time zone: the next one."
    )

    @model_validator(mode="after")
    def _some(self) -> WaitSpec:
        if self.until is None and not (self.days or self.hours or self.minutes):
            raise refuse("days", "a wait of no time", "give days:, hours:, minutes: or until:")
        if self.until is not None and (self.days or self.hours or self.minutes):
            raise refuse("until", "both a duration and a time", "keep one of them")
        return self

    @property
    def seconds(self) -> float:
        return self.days * 86400 + self.hours * 3600 + self.minutes * 60


class WaitForEventSpec(_Model):
    event: EventName
    where: dict[str, Scalar] = Field(default_factory=dict)
    timeout_hours: float | None = Field(None, gt=0, le=24 * 365)
    near_km: float | None = Field(
        None, gt=0, le=100, description="Instead of an event: a location within this radius."
    )


class BranchSpec(_Model):
    if_: Condition = Field(alias="if")
    then: StepId
    else_: StepId = Field(alias="else")


class SplitPath(_Model):
    weight: float = Field(gt=0)
    next: StepId
    control: bool = Field(False, description="A control path: its people receive nothing.")


class SplitSpec(_Model):
    paths: Annotated[list[SplitPath], Field(min_length=2, max_length=10)]
    experiment: Name | None = Field(None, description="The experiment that records the split.")


class UpdateTraitSpec(_Model):
    trait: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    value: Scalar | None


class WebhookSpec(_Model):
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    retries: int = Field(3, ge=0, le=10)


class ExitSpec(_Model):
    reason: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = "finished"


class _Step(_Model):
    id: StepId
    next: StepId | None = None
    error: StepId | None = Field(None, description="Where a person goes when the step fails.")


class SendStep(_Step):
    send: SendSpec
    out_of_stock: StepId | None = None


class WaitStep(_Step):
    wait: WaitSpec


class WaitForEventStep(_Step):
    wait_for_event: WaitForEventSpec
    timeout: StepId | None = None


class BranchStep(_Step):
    branch: BranchSpec


class SplitStep(_Step):
    split: SplitSpec


class UpdateTraitStep(_Step):
    update_trait: UpdateTraitSpec


class WebhookStep(_Step):
    webhook: WebhookSpec


class ExitStep(_Step):
    exit: ExitSpec


STEP_TAGS = ("send", "wait", "wait_for_event", "branch", "split", "update_trait", "webhook", "exit")

Step: TypeAlias = Annotated[
    Annotated[SendStep, Tag("send")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitForEventStep, Tag("wait_for_event")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[UpdateTraitStep, Tag("update_trait")]
    | Annotated[WebhookStep, Tag("webhook")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(
        _one_key(STEP_TAGS),
        custom_error_type="invalid_step",
        custom_error_message="a step has an id and one key among " + ", ".join(STEP_TAGS),
    ),
]


def exits(step: Step) -> list[tuple[str, str]]:
    """The steps ``step`` can lead to, with the field naming each."""
    found: list[tuple[str, str | None]] = [("next", step.next), ("error", step.error)]
    match step:
        case SendStep():
            found.append(("out_of_stock", step.out_of_stock))
        case WaitForEventStep():
            found.append(("timeout", step.timeout))
        case BranchStep():
            found += [("branch.then", step.branch.then), ("branch.else", step.branch.else_)]
            found = [f for f in found if f[0] != "next"]
        case SplitStep():
            found += [(f"split.paths[{i}].next", p.next) for i, p in enumerate(step.split.paths)]
            found = [f for f in found if f[0] != "next"]
        case WaitStep() | UpdateTraitStep() | WebhookStep() | ExitStep():
            pass
    return [(field, target) for field, target in found if target is not None]


def pauses(step: Step) -> bool:
    """Whether a person stays on ``step`` for some time (which breaks a cycle)."""
    return isinstance(step, WaitStep | WaitForEventStep)


class GoalSpec(_Model):
    event: EventName


class ExitOn(_Model):
    event: EventName
    where: dict[str, Scalar] = Field(default_factory=dict)


class JourneyDefinition(_Model):
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
        ids: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            if step.id in ids:
                raise refuse(
                    f"steps[{i}].id",
                    f"step id {step.id!r} is used twice",
                    "give each step its own id",
                )
            ids[step.id] = i
        for i, step in enumerate(self.steps):
            if isinstance(step, WaitForEventStep) and step.timeout is None:
                raise refuse(
                    f"steps[{i}].timeout",
                    f"step {step.id!r} waits for an event with no timeout exit",
                    "add `timeout: STEP` (and `timeout_hours:` under wait_for_event)",
                )
            if isinstance(step, WaitForEventStep) and step.wait_for_event.timeout_hours is None:
                raise refuse(
                    f"steps[{i}].wait_for_event.timeout_hours",
                    f"step {step.id!r} could wait for ever",
                    "add `timeout_hours: N`",
                )
            if not isinstance(step, ExitStep | BranchStep | SplitStep) and step.next is None:
                raise refuse(
                    f"steps[{i}].next",
                    f"step {step.id!r} leads nowhere",
                    "add `next: STEP`, or make it an `exit` step",
                )
            for field, target in exits(step):
                if target not in ids:
                    raise refuse(
                        f"steps[{i}].{field}",
                        f"there is no step {target!r}",
                        "use the id of a step of this journey: " + ", ".join(ids),
                    )
        seen = _reachable(self.steps, ids)
        for i, step in enumerate(self.steps):
            if step.id not in seen:
                raise refuse(
                    f"steps[{i}]",
                    f"step {step.id!r} cannot be reached from the first step",
                    "lead to it from another step's next, or remove it",
                )
        cycle = _cycle_without_pause(self.steps, ids)
        if cycle:
            raise refuse(
                f"steps[{ids[cycle[0]]}]",
                "the steps " + " -> ".join(cycle) + " loop without a wait",
                "put a `wait` or `wait_for_event` step on the loop",
            )
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


def _reachable(steps: list[Step], ids: dict[str, int]) -> set[str]:
    seen = {steps[0].id}
    todo = [steps[0]]
    while todo:
        for _, target in exits(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(steps[ids[target]])
    return seen


def _cycle_without_pause(steps: list[Step], ids: dict[str, int]) -> list[str] | None:
    """A loop of steps none of which pauses, as ids (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(step: Step, path: list[str]) -> list[str] | None:
        state[step.id] = 1
        path.append(step.id)
        if not pauses(step):
            for _, target in exits(step):
                nxt = steps[ids[target]]
                if pauses(nxt):
                    continue
                if state.get(target) == 1:
                    return [*path[path.index(target) :], target]
                if target not in state:
                    found = visit(nxt, path)
                    if found:
                        return found
        path.pop()
        state[step.id] = 2
        return None

    for step in steps:
        if step.id not in state and not pauses(step):
            found = visit(step, [])
            if found:
                return found
    return None


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
