"""What the journey step function (:mod:`.engine`) works on: a person's state in a journey, the
signals that move it, the facts read about the person, the actions a move takes, and the outcome
of a move. Plain frozen data; times are naive UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias

from surmesure.journeys.model import Scalar


@dataclass(frozen=True, slots=True)
class State:
    person_id: int
    entry: int
    step: str
    status: Literal["running", "done"]
    entered_at: datetime
    due_at: datetime | None = None
    product: str | None = None
    held: bool = False
    """On a split's control path: sends are recorded held out."""
    reason: str | None = None
    """Why it ended: goal, exit_on, consent_withdrawn, failed, or the exit step's reason."""


@dataclass(frozen=True, slots=True)
class Tick:
    pass


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    properties: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConsentWithdrawn:
    pass


@dataclass(frozen=True, slots=True)
class StockChange:
    product: str
    in_stock: bool


@dataclass(frozen=True, slots=True)
class Location:
    distance_km: float
    """To the nearest store."""


@dataclass(frozen=True, slots=True)
class StepFailed:
    step: str
    reason: str


Signal: TypeAlias = Tick | Event | ConsentWithdrawn | StockChange | Location | StepFailed


@dataclass(frozen=True, slots=True)
class Facts:
    conditions: frozenset[str] = frozenset()
    """Ids of the branch steps whose condition holds for the person now."""
    out_of_stock: bool = False
    """The person's product is out of stock now."""
    zone: str | None = None
    """The person's time zone (IANA name); :data:`DEFAULT_ZONE` when missing or unknown."""


NO_FACTS = Facts()


@dataclass(frozen=True, slots=True)
class Send:
    step: str
    held: bool = False


@dataclass(frozen=True, slots=True)
class UpdateTrait:
    step: str
    trait: str
    value: Scalar | None


@dataclass(frozen=True, slots=True)
class CallWebhook:
    step: str
    url: str
    retries: int


@dataclass(frozen=True, slots=True)
class Assigned:
    step: str
    path: int
    control: bool


Action: TypeAlias = Send | UpdateTrait | CallWebhook | Assigned


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    actions: tuple[Action, ...] = ()
    visited: tuple[str, ...] = ()
    """The steps run, in order (each is one transition)."""

    @property
    def transitions(self) -> int:
        return len(self.visited)
