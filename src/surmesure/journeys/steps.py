"""The steps of a journey document (:mod:`.document`), one model per kind, tagged by their one
key, and what each leads to."""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Discriminator, Field, Tag, model_validator

from surmesure.domain.campaigns import ChannelContent, ChannelName, refuse
from surmesure.domain.segments import Condition
from surmesure.journeys.model import EventName, Name, Node, Scalar, StepId, one_key


class SendSpec(Node):
    channels: Annotated[dict[ChannelName, ChannelContent], Field(min_length=1)]
    choose: Literal["first", "best"] = Field(
        "first",
        description="first: the first channel reachable, in the order written; best: "
        "the channel of highest appetence",
    )
    purpose: Literal["marketing", "service"] = "marketing"


class WaitSpec(Node):
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


class WaitForEventSpec(Node):
    event: EventName
    where: dict[str, Scalar] = Field(default_factory=dict)
    timeout_hours: float | None = Field(None, gt=0, le=24 * 365)
    near_km: float | None = Field(
        None, gt=0, le=100, description="Instead of an event: a location within this radius."
    )


class BranchSpec(Node):
    if_: Condition = Field(alias="if")
    then: StepId
    else_: StepId = Field(alias="else")


class SplitPath(Node):
    weight: float = Field(gt=0)
    next: StepId
    control: bool = Field(False, description="A control path: its people receive nothing.")


class SplitSpec(Node):
    paths: Annotated[list[SplitPath], Field(min_length=2, max_length=10)]
    experiment: Name | None = Field(None, description="The experiment that records the split.")


class UpdateTraitSpec(Node):
    trait: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    value: Scalar | None


class WebhookSpec(Node):
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    retries: int = Field(3, ge=0, le=10)


class ExitSpec(Node):
    reason: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = "finished"


class _Step(Node):
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
        one_key(STEP_TAGS),
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
