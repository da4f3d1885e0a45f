"""The variant a template's next best action gives one person, and why.

Pure: the saved model (:class:`~surmesure.learn.uplift.saved.ActionModel`) and the person's
:class:`~surmesure.decide.content.Audience` arrive; each of the model's features is read from
the trait or derived metric the template maps it to (:mod:`surmesure.domain.next_best_action`).
The person gets the variant of the action with the highest ``uplift x value - cost``; the
neutral default variant when that is "do nothing", when a feature is missing or not reliable
enough, or when the person is unknown or opted out. The explanation holds every option's
arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from surmesure.decide.content import Audience
from surmesure.domain.next_best_action import ModelFeatures, NextBestAction
from surmesure.domain.templates import TemplateDefinition
from surmesure.errors import InvalidInput
from surmesure.learn.uplift.actions import NOTHING, Choice
from surmesure.learn.uplift.saved import ActionModel

K = TypeVar("K")

#: the reason a campaign records for a person the model gives nothing
REASON = "next_best_action"


@dataclass(frozen=True, slots=True)
class Pick:
    """The chosen action (``None``: none could be chosen) and its variant (``None``: the
    neutral default), with the explanation."""

    action: str | None
    variant: str | None
    reason: str
    explanation: dict[str, Any]

    @property
    def nothing(self) -> bool:
        """Whether the model chose to do nothing (not a fall-back)."""
        return self.action == NOTHING


def check(spec: ModelFeatures, model: ActionModel) -> None:
    """The document's mapping against the saved model: every action names a variant (for a
    template), every feature reads the profile; :class:`InvalidInput` naming the field."""
    if isinstance(spec, NextBestAction):
        _check_actions(spec, model)
    for feature in model.features:
        if feature.name not in spec.features:
            raise InvalidInput(
                f"Model {model.name!r} reads feature {feature.name!r}, which the document "
                "does not map to the profile.",
                field=f"next_best_action.features.{feature.name}",
                hint="map it to a trait or a derived metric, e.g. {metric: recency_days}",
            )


def _check_actions(spec: NextBestAction, model: ActionModel) -> None:
    names = [a.name for a in model.actions]
    for name in names:
        if name not in spec.actions:
            raise InvalidInput(
                f"Model {model.name!r} has action {name!r}, which names no variant.",
                field=f"next_best_action.actions.{name}",
                hint="map every action of the model to a variant of the template",
            )
    for name in spec.actions:
        if name not in names:
            raise InvalidInput(
                f"Model {model.name!r} has no action {name!r}.",
                field=f"next_best_action.actions.{name}",
                hint=f"its actions: {', '.join(names)}",
            )


def values_of(
    spec: ModelFeatures, audience: Audience, min_reliability: float
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each mapped feature's value, and why the others cannot be used (``min_reliability``:
    the document's threshold, when neither the feature nor the mapping gives one)."""
    base = spec.min_reliability
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, source in spec.features.items():
        threshold = next(
            t for t in (source.min_reliability, base, min_reliability) if t is not None
        )
        if source.metric is not None:
            held = audience.metrics.get(source.metric)
        else:
            held = audience.traits.get(str(source.trait))
        if held is None:
            problems[name] = f"{source.reads}: missing"
        elif held.effective_reliability < threshold:
            problems[name] = (
                f"{source.reads}: reliability {held.effective_reliability:.2f} < {threshold:g}"
            )
        else:
            values[name] = held.value
    return values, problems


def pick(definition: TemplateDefinition, model: ActionModel, audience: Audience) -> Pick:
    """The action and variant for ``audience`` (see the module)."""
    spec = definition.next_best_action
    assert spec is not None
    return picks(spec, model, {0: audience}, definition.min_reliability)[0]


def picks(
    spec: ModelFeatures,
    model: ActionModel,
    audiences: Mapping[K, Audience],
    min_reliability: float,
) -> dict[K, Pick]:
    """:func:`pick` for each of ``audiences``, the readable ones predicted in one batch
    (``min_reliability``: the document's threshold). A campaign's ``spec`` names no variants:
    each pick's ``variant`` is then ``None``."""
    check(spec, model)
    out: dict[K, Pick] = {}
    readable_rows: list[tuple[K, Any, dict[str, Any]]] = []  # key, encoded row, values
    for key, audience in audiences.items():
        note: dict[str, Any] = {"model": model.name, "version": model.version}
        if audience.person_id is None or audience.opted_out:
            why = "unknown person" if audience.person_id is None else "opted out of personalization"
            out[key] = _fallback(note, why)
            continue
        row, values, problems = readable(spec, model, audience, min_reliability)
        if row is None:
            note["features"] = {k: problems[k] for k in sorted(problems)}
            out[key] = _fallback(
                note,
                "a feature is missing or unreliable: "
                + "; ".join(problems[k] for k in sorted(problems)),
            )
            continue
        readable_rows.append((key, row, values))
    if readable_rows:
        choice, uplift = model.choose(np.vstack([row for _, row, _ in readable_rows]))
        for i, (key, _, values) in enumerate(readable_rows):
            out[key] = _picked(spec, model, choice, uplift, i, values)
    return out


def _picked(
    spec: ModelFeatures,
    model: ActionModel,
    choice: Choice,
    uplift: Any,
    i: int,
    values: dict[str, Any],
) -> Pick:
    """The pick of row ``i`` of a batch choice, with every option's arithmetic."""
    action = choice.name(i)
    note: dict[str, Any] = {
        "model": model.name,
        "version": model.version,
        "features": values,
        "action": action,
        "arithmetic": choice.explain(i, uplift),
        "options": [
            {
                "action": a.name,
                "uplift": round(float(uplift[i, j]), 6),
                "value": a.value,
                "cost": a.cost,
                "expected": round(float(choice.expected[i, j]), 6),
            }
            for j, a in enumerate(model.actions)
        ],
    }
    if action == NOTHING:
        reason = f"next best action: {NOTHING} (no action is worth its cost)"
        return Pick(action, None, reason, {**note, "reason": reason})
    variant = spec.actions[action] if isinstance(spec, NextBestAction) else None
    reason = f"next best action: {action}"
    return Pick(action, variant, reason, {**note, "reason": reason})


def readable(
    spec: ModelFeatures, model: ActionModel, audience: Audience, min_reliability: float
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """The person's encoded row (``None`` when a feature cannot be read), the features'
    values, and why each unreadable feature cannot be read."""
    values, problems = values_of(spec, audience, min_reliability)
    row, unreadable = model.row(values)
    problems.update({k: f"{k}: {v}" for k, v in unreadable.items() if k not in problems})
    return (row if not problems else None), values, problems


def nothing_for(
    spec: ModelFeatures,
    model: ActionModel,
    audiences: Mapping[int, Audience],
    min_reliability: float,
) -> set[int]:
    """The people of ``audiences`` the model gives "do nothing", predicted in one batch;
    people whose features cannot be read are not among them."""
    return {
        p for p, found in picks(spec, model, audiences, min_reliability).items() if found.nothing
    }


def _fallback(note: dict[str, Any], why: str) -> Pick:
    reason = f"next best action not used ({why}): the neutral default variant"
    return Pick(None, None, reason, {**note, "action": None, "reason": reason})
