"""A template's ``next_best_action``: which saved model picks the variant, and where each of
the model's features comes from in the person's profile.

Example (YAML)::

    next_best_action:
      model: email_offer          # saved by `uplift actions ... --save email_offer`
      actions:                    # the model's action -> the variant that carries it
        Mens E-Mail: mens
        Womens E-Mail: womens
      features:                   # the model's feature -> a trait or a derived metric
        recency: {metric: recency_months}
        history: {metric: monetary}
        zip_code: {trait: zip_code}

Each feature reads one trait or one derived metric, as a template field does
(:class:`~surmesure.domain.templates.FieldSpec`; its ``fallback`` is not used), and must be
reliable enough (``min_reliability``, default the template's). The decision then gives the
variant of the action with the highest ``uplift x value - cost``; when that is "do nothing",
or when a feature is missing or unreliable, or the person is unknown or opted out of
personalization, it gives the neutral default variant, and its explanation says why.
Every action of the model must name a variant, and every feature of the model must be mapped:
both are checked against the saved model when a decision reads it.

A campaign's ``next_best_action`` has no ``actions``: a person the model gives "do nothing"
gets no message (recorded as suppressed, reason ``next_best_action``); a person whose features
cannot be read gets the campaign's content as usual; the control group and the holdout are
drawn before, as without a model.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from surmesure.domain.templates_fields import FieldSpec

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Label = Annotated[str, Field(min_length=1, max_length=128)]


class ModelFeatures(BaseModel):
    """A saved model and where each of its features comes from (a campaign's
    ``next_best_action``: a person the model gives nothing gets no message)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Name
    features: dict[Label, FieldSpec] = Field(default_factory=dict)
    min_reliability: Annotated[float, Field(ge=0, le=1)] | None = None


class NextBestAction(ModelFeatures):
    """A template's: besides, the variant that carries each action."""

    actions: Annotated[dict[Label, Name], Field(min_length=1)]
