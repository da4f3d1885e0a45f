"""Experiment definitions: variants, control, holdout, layer, metrics and attribution window.

A definition is a small document (YAML or JSON)::

    name: welcome_offer            # lowercase letters, digits and _
    description: 10% off the first order
    variants:                      # weights are shares of everyone eligible
      - {name: control, weight: 0.1}
      - {name: offer, weight: 0.45}
      - {name: offer_plus, weight: 0.45}
    control: control               # the variant that gets no message
    holdout: 0.05                  # global holdout share: nobody there gets a variant
    layer: {name: onboarding, start: 0.0, end: 0.5}   # optional, mutually exclusive layers
    primary: conversion
    guardrails: [unsubscribe]
    attribution_days: 14
    cuped: true                    # the same metric over the window before assignment
    channel: email                 # where its messages go (default email): who refused
                                   # marketing there is never assigned

Each variant owns a fixed slot of the unit interval (``capacity``, equal by default) and takes
its first ``weight``: raising a weight never moves anybody already assigned. The global holdout
is the same for every experiment (one salt for all); at equal shares it holds the same people,
and a larger share holds everybody a smaller one does. Experiments of one layer that cover
disjoint ``[start, end)`` ranges never share a person.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from surmesure.documents import error_path, read_document
from surmesure.errors import Conflict, InvalidInput

Metric = Literal["visit", "conversion", "revenue", "unsubscribe"]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

METRICS: dict[str, str] = {
    "visit": "binomial",
    "conversion": "binomial",
    "revenue": "mean",
    "unsubscribe": "binomial",
}
"""Each metric and its kind: visit (any page or track event), conversion (an order that is
not a return), revenue (order totals net of returns, per person), unsubscribe (a channel
activity of kind 'unsubscribed')."""

HOLDOUT_SALT = "surmesure:global-holdout"
"""The salt of the global holdout, the same for every experiment."""

_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove this field (check its spelling)",
    "string_pattern_mismatch": "use lowercase letters, digits and _ (e.g. welcome_offer)",
    "literal_error": "use one of: visit, conversion, revenue, unsubscribe",
}


CHANNEL_HINT = "use one of: email, sms, phone, paper, web"


def _refuse(field: str, reason: str, hint: str = "") -> PydanticCustomError:
    """A refusal from a cross-field check, carrying the field it is about."""
    return PydanticCustomError(
        "invalid_definition", "{reason}", {"reason": reason, "field": field, "hint": hint}
    )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Model):
    name: Name
    weight: float = Field(ge=0, le=1, description="Share of eligible people in this variant.")
    capacity: float | None = Field(
        None, gt=0, le=1, description="Slot of the unit interval (default: equal slots)."
    )


class LayerRange(_Model):
    """The share ``[start, end)`` of a layer's bucket range this experiment owns."""

    name: Name
    start: float = Field(ge=0, le=1)
    end: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> LayerRange:
        if self.end <= self.start:
            raise _refuse("end", "end must be above start")
        return self

    def overlaps(self, other: LayerRange) -> bool:
        return self.name == other.name and self.start < other.end and other.start < self.end


class ExperimentDefinition(_Model):
    name: Name
    description: str = ""
    salt: str | None = Field(None, description="Assignment salt (default: the name).")
    variants: list[Variant] = Field(min_length=2)
    control: Name | None = Field(None, description="Variant without a message.")
    holdout: float = Field(0.0, ge=0, lt=1, description="Global holdout share.")
    layer: LayerRange | None = None
    primary: Metric
    guardrails: list[Metric] = Field(default_factory=list)
    attribution_days: int = Field(gt=0, le=3650)
    cuped: bool = False
    channel: Literal["email", "sms", "phone", "paper", "web"] = Field(
        "email", description="The channel of its messages: who refused marketing there is left out."
    )
    topic: str | None = Field(
        None,
        description="The preference topic of its messages: who left that topic is left out.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentDefinition:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise _refuse("variants", f"variant names must be distinct, got {names}")
        if self.control is not None and self.control not in names:
            raise _refuse("control", f"{self.control!r} is not one of the variants {names}")
        caps = [v.capacity for v in self.variants]
        if any(c is not None for c in caps) and any(c is None for c in caps):
            raise _refuse("variants", "give a capacity to every variant or to none")
        if sum(c or 0 for c in caps) > 1 + 1e-12:
            raise _refuse("variants", "capacities must sum to at most 1")
        for i, v in enumerate(self.variants):
            slot = v.capacity if v.capacity is not None else 1 / len(self.variants)
            if v.weight > slot + 1e-12:
                raise _refuse(
                    f"variants[{i}].weight",
                    f"{v.weight} is beyond the variant's slot of {slot:g}",
                    "keep each weight within its slot (equal slots: 1 / number of variants), "
                    "or give capacities",
                )
        if self.primary in self.guardrails:
            raise _refuse("guardrails", f"{self.primary!r} is already the primary metric")
        return self

    @property
    def assignment_salt(self) -> str:
        return self.salt or self.name

    @property
    def control_variant(self) -> str:
        """The control (the first variant when none is named)."""
        return self.control or self.variants[0].name

    @property
    def metrics(self) -> list[Metric]:
        """Primary first, then guardrails, without repeats."""
        return list(dict.fromkeys([self.primary, *self.guardrails]))

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def parse(document: Any) -> ExperimentDefinition:
    """A validated definition; :class:`InvalidInput` naming the first faulty field."""
    if not isinstance(document, dict):
        raise InvalidInput(
            "An experiment definition is a mapping.",
            field="(document)",
            hint="write name:, variants:, primary: and attribution_days: at the top level",
        )
    try:
        return ExperimentDefinition.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        ctx = error.get("ctx") or {}
        loc = tuple(error["loc"])
        path = error_path(loc)
        if ctx.get("field"):
            path = f"{path}.{ctx['field']}" if loc else str(ctx["field"])
        message = str(ctx.get("reason") or error["msg"]).removeprefix("Value error, ")
        hint = str(
            ctx.get("hint")
            or (CHANNEL_HINT if loc == ("channel",) else None)
            or _HINTS.get(error["type"], "see the experiment definition reference in the README")
        )
        raise InvalidInput(f"{path}: {message}.", field=path, hint=hint) from exc


def load_file(path: Path) -> ExperimentDefinition:
    """The definition in a YAML or JSON file (JSON when the name ends in .json)."""
    return parse(read_document(path))


def check_update(old: ExperimentDefinition, new: ExperimentDefinition) -> None:
    """Refuse a change that would move people already assigned.

    Allowed: raised weights, new guardrails, another description, window or CUPED choice.
    Refused: renamed, reordered or removed variants, other capacities, salt, layer or holdout,
    and lowered weights.
    """
    fixed = (
        [(v.name, v.capacity) for v in old.variants] == [(v.name, v.capacity) for v in new.variants]
        and old.assignment_salt == new.assignment_salt
        and old.layer == new.layer
        and old.holdout == new.holdout
    )
    field = "variants"
    if fixed:
        lowered = [
            i
            for i, (a, b) in enumerate(zip(old.variants, new.variants, strict=True))
            if b.weight < a.weight
        ]
        if not lowered:
            return
        field = f"variants[{lowered[0]}].weight"
    raise Conflict(
        f"Experiment {new.name!r} exists and this change would move people already assigned.",
        field=field,
        hint="only raise weights, or create an experiment with a new name",
    )
