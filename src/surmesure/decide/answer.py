"""What a decision answers, and what the decision log keeps of it.

:func:`decided` shapes the answer of a decision from what :mod:`surmesure.decide.service`
decided: ``decision_id``, ``person_id``, ``known``, ``placement``, ``decided_at``, ``content``,
``offers``, ``products``, ``context``, in an experiment ``experiment``, and the
``explanation``. :func:`suppressed` shapes that of a decision held back (a refusal of marketing,
a pause, a left topic): ``suppressed`` says why, ``content`` is ``null``. Each comes with the
record the decision log keeps (the answer's parts in :data:`RESULT_PARTS`, its context and
explanation) and the blocks it shows. Nothing here reads or writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from surmesure.decide.content import Audience, Rendered
from surmesure.decide.exposure import Shown, new_id
from surmesure.decide.personal import Personal
from surmesure.domain.templates import TemplateDefinition
from surmesure.experiments.membership import Membership
from surmesure.protect import consent, marketing

RESULT_PARTS = ("suppressed", "content", "offers", "products", "experiment")
"""The parts of an answer its record keeps as ``result`` (those the answer has)."""


@dataclass(frozen=True)
class Explanation:
    """Why a decision came out as it did, recorded with it (its ``to_dict`` is what the API
    answers and the decision log keeps): whom it was for (``person``), the variant and each
    field (``content``), the offer blocks (``offers``), the products (``products``) and, in an
    experiment, the assignment (``experiment``)."""

    person: str
    content: Mapping[str, Any]
    offers: Sequence[Mapping[str, Any]]
    products: Mapping[str, Any]
    experiment: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "person": self.person,
            "content": dict(self.content),
            "offers": list(self.offers),
            "products": dict(self.products),
        }
        if self.experiment is not None:
            out["experiment"] = dict(self.experiment)
        return out


@dataclass(frozen=True)
class Answer:
    """A decision's answer (``result``), the record the decision log keeps of it, and the
    blocks it shows (``shown``, on the channel ``shown_on``)."""

    result: dict[str, Any]
    record: dict[str, Any]
    shown: list[Shown]
    shown_on: str


def decided(
    definition: TemplateDefinition,
    placement: str,
    person_id: int | None,
    audience: Audience,
    at: datetime,
    rendered: Rendered,
    found: Personal,
    offers: list[dict[str, Any]],
    offers_note: list[dict[str, Any]],
    held: Membership | None,
    opted_out: bool,
) -> Answer:
    """The answer of a decision for ``person_id`` (``None``: nobody known) at ``at``: the
    ``rendered`` template, the ``offers`` picked and the context and products ``found``; in an
    experiment, ``held`` (a held-out person's explanation says so, and whether they had opted
    out, ``opted_out``)."""
    products_note = found.products_note
    if held is not None and held.held_out:
        products_note = {**products_note, "reason": f"held out ({held.reason}): popular products"}
    content_id = f"{definition.name}/{rendered.variant}"
    expires = at + timedelta(days=definition.expires_days) if definition.expires_days else None
    result = {
        "decision_id": new_id(),
        "person_id": person_id,
        "known": person_id is not None,
        "placement": placement,
        "decided_at": at,
        "content": {
            "content_id": content_id,
            "template": definition.name,
            "variant": rendered.variant,
            "subject": rendered.subject,
            "body": rendered.body,
            "format": rendered.format,
        },
        "offers": offers,
        "products": found.products,
        "context": found.context,
    }
    why = Explanation(
        person=_person_note(person_id, audience),
        content=rendered.explanation,
        offers=offers_note,
        products=products_note,
    )
    if held is not None:
        result["experiment"] = held.to_dict()
        why = replace(why, experiment=held.to_dict())
        if held.held_out:
            why = replace(
                why,
                content={
                    **rendered.explanation,
                    "opted_out": opted_out,
                    "variant": {
                        "name": rendered.variant,
                        "reason": f"held out ({held.reason}): the neutral default variant",
                    },
                },
            )
    result["explanation"] = why.to_dict()
    shown = []
    if person_id is not None:
        shown = [Shown(content_id, expires)] + [
            Shown(o["content_id"], o["expires_at"]) for o in offers
        ]
    shown_on = str(found.context.get("channel") or definition.channel)
    return Answer(result, _record(result), shown, shown_on)


def suppressed(
    placement: str,
    person_id: int | None,
    audience: Audience,
    channel: str,
    at: datetime,
    reason: str,
) -> Answer:
    """The answer for a person who refused marketing on ``channel``, paused it or left the
    template's topic: nothing shown, ``reason`` recorded."""
    explanation = Explanation(
        person=f"person {person_id} {_HELD_BACK.get(reason, reason).format(channel=channel)}: "
        "no marketing content",
        content={"suppressed": reason, "opted_out": audience.opted_out},
        offers=[],
        products={"personalized": False, "reason": reason},
    ).to_dict()
    context = {"channel": channel}
    result: dict[str, Any] = {
        "decision_id": new_id(),
        "person_id": person_id,
        "known": person_id is not None,
        "placement": placement,
        "decided_at": at,
        "suppressed": {"reason": reason, "purpose": "marketing", "channel": channel},
        "content": None,
        "offers": [],
        "products": [],
        "context": context,
        "explanation": explanation,
    }
    return Answer(result, _record(result), [], channel)


_HELD_BACK = {
    consent.OPTED_OUT_MARKETING: "refused marketing on {channel}",
    marketing.PAUSED: "paused marketing",
    marketing.TOPIC_REFUSED: "left the topic of this content",
}


def _record(result: dict[str, Any]) -> dict[str, Any]:
    """What the decision log keeps of the answer ``result``."""
    return {
        "decision_id": result["decision_id"],
        "person_id": result["person_id"],
        "placement": result["placement"],
        "context": result["context"],
        "result": {k: result[k] for k in RESULT_PARTS if k in result},
        "explanation": result["explanation"],
        "decided_at": result["decided_at"],
    }


def _person_note(person_id: int | None, audience: Audience) -> str:
    if person_id is None:
        return "nobody is known by the given id: a neutral decision"
    if audience.opted_out:
        return f"person {person_id} opted out of personalization: everything neutral"
    return f"person {person_id}"
