"""Templates: one-to-one content inside one-to-few variants, as a validated document.

A template serves one placement (``email_welcome``, ``home_banner``, ...). Its ``fields`` name
the personal values it may use: each reads a resolved trait and has a neutral ``fallback``. A
field is used only when the trait exists, its effective reliability is at least the field's
``min_reliability`` (default: the template's, 0.6) and the person has not opted out of
personalization; otherwise the fallback renders.

``purpose`` says what the content is for: ``marketing`` (the default) is not made for a person
who refused marketing on the decision's channel (the decision is suppressed); ``service``
(an order confirmation, an account page's own content) is not marketing and no such refusal
stops it. A marketing template is not made either for a person who paused marketing, nor, when
it names a ``topic`` (one of ``Settings.preference_topics``), for a person who left that topic;
a block naming a ``topic`` is not offered to a person who left it.

``variants`` are tried in order and the first whose rule matches wins: ``segment`` is stored
membership, ``when`` a condition of the segment language evaluated in memory. The last variant
is the default and has no rule. ``blocks`` are content blocks (offers) with an expiry and reuse
rules, picked per person from the exposure ledger.

``format`` is what the bodies and blocks are written in: ``html`` (every printed value is
escaped, so a trait holding ``<script>`` prints as text) or ``text`` (nothing is escaped: SMS,
push, the plain-text part of an e-mail). By default ``html`` for the ``web`` and ``email``
channels, ``text`` for the others. A subject is always text.

Example (YAML)::

    name: welcome
    placement: email_welcome
    locale: fr
    fields:
      first_name: {trait: first_name, fallback: ""}
    variants:
      - name: loyal
        segment: loyal_customers
        subject: "Merci{% if person.first_name %} {{ person.first_name }}{% endif %} !"
        body: "..."
      - name: default
        body: "Bonjour{% if person.first_name %} {{ person.first_name }}{% endif %},"
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)
from pydantic_core import PydanticCustomError

from surmesure.domain.next_best_action import NextBestAction
from surmesure.domain.segments import Condition
from surmesure.domain.templates_fields import DERIVED_METRICS as DERIVED_METRICS
from surmesure.domain.templates_fields import TEMPLATE_METRICS as TEMPLATE_METRICS
from surmesure.domain.templates_fields import FieldSpec as FieldSpec
from surmesure.domain.traits import DEFAULT_MIN_RELIABILITY

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
#: the longest text (subject, body, block title or text) a template may hold, in characters
MAX_SOURCE = 200_000
Source = Annotated[str, Field(max_length=MAX_SOURCE)]
Format = Literal["html", "text"]
#: channels whose content is HTML unless a template says otherwise
HTML_CHANNELS = frozenset({"web", "email"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Variant(_Model):
    """One version of the content. ``segment`` and ``when`` are rules (both must hold when
    both are given); a variant with neither always matches."""

    name: Name
    segment: Name | None = None
    when: Condition | None = None
    subject: Source = ""
    body: Source

    @property
    def has_rule(self) -> bool:
        return self.segment is not None or self.when is not None


class Block(_Model):
    """A content block (an offer, an article) with its expiry and reuse rules.

    ``not_again_days``: once a person saw it, not again within that many days (``None``: may
    repeat, after every block the person has not seen). ``reuse_while_unexpired``: a block
    already sent to others stays on offer, until it expires, to people who missed it; when
    false it is only for people reached before anyone saw it."""

    content_id: Annotated[str, Field(min_length=1, max_length=128)]
    title: Source = ""
    text: Source = ""
    segment: Name | None = None
    when: Condition | None = None
    expires_at: datetime | None = None
    not_again_days: Annotated[int, Field(ge=0)] | None = None
    reuse_while_unexpired: StrictBool = True
    topic: Name | None = None


class TemplateDefinition(_Model):
    """A template document, as authored (YAML or JSON)."""

    name: Name
    description: str = ""
    placement: Name
    channel: Annotated[str, Field(min_length=1, max_length=16)] = "web"
    purpose: Literal["marketing", "service"] = "marketing"
    format: Format | None = None
    locale: Annotated[str, Field(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")] = "fr"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    min_reliability: Annotated[float, Field(ge=0, le=1)] = DEFAULT_MIN_RELIABILITY
    expires_days: Annotated[int, Field(ge=0)] | None = None
    fields: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")], FieldSpec] = Field(
        default_factory=dict
    )
    variants: Annotated[list[Variant], Field(min_length=1)]
    blocks: list[Block] = Field(default_factory=list)
    max_blocks: Annotated[int, Field(ge=0)] = 2
    topic: Name | None = None
    next_best_action: NextBestAction | None = Field(
        None,
        description="A saved next-best-action model picks the variant "
        "(surmesure.domain.next_best_action).",
    )
    experiment: Name | None = Field(
        None,
        description="The experiment its decisions belong to: its control group and the global "
        "holdout get the neutral content, recorded as held out.",
    )

    @model_validator(mode="after")
    def _default_last(self) -> TemplateDefinition:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if self.variants[-1].has_rule:
            raise ValueError(
                f"the last variant ({self.variants[-1].name!r}) is the default: give it no "
                "segment and no when rule"
            )
        self._check_actions(names)
        ids = [b.content_id for b in self.blocks]
        if len(set(ids)) != len(ids):
            raise ValueError(f"block content_id values must be unique, got {ids}")
        return self

    def _check_actions(self, names: list[str]) -> None:
        if self.next_best_action is None:
            return
        for action, variant in self.next_best_action.actions.items():
            if variant not in names:
                raise PydanticCustomError(
                    "invalid_action",
                    "{reason}",
                    {
                        "reason": f"action {action!r} names variant {variant!r}, which this "
                        "template does not have",
                        "field": f"next_best_action.actions.{action}",
                        "hint": f"name one of: {', '.join(names)}",
                    },
                )

    def threshold(self, field: str) -> float:
        spec = self.fields[field]
        return self.min_reliability if spec.min_reliability is None else spec.min_reliability

    @property
    def output_format(self) -> Format:
        """``format``, or the channel's default when it is not given."""
        if self.format is not None:
            return self.format
        return "html" if self.channel in HTML_CHANNELS else "text"

    @property
    def default(self) -> Variant:
        return self.variants[-1]

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
