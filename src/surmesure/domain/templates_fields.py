"""A personal value a template (or its next best action) reads: a trait or a derived metric,
with a neutral fallback and an optional reliability threshold."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from surmesure.domain.segments import METRICS

Fallback = StrictStr | StrictInt | StrictFloat | StrictBool | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


#: metrics a template field may read that are computed from a column of ``derived_metrics``
#: (see :mod:`surmesure.decide.metrics`)
DERIVED_METRICS: dict[str, str] = {
    "points": "monetary",
    "clv_tier": "expected_value",
    "top_category": "top_category_1",
}
#: every derived metric a template field may read
TEMPLATE_METRICS: frozenset[str] = frozenset(METRICS) | frozenset(DERIVED_METRICS)


class FieldSpec(_Model):
    """A personal value: the trait or the derived metric it reads (one of them), the neutral
    fallback, an optional threshold. A metric is reliable when freshly derived and ages like a
    trait (see :mod:`surmesure.decide.metrics`)."""

    trait: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    metric: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    fallback: Fallback = ""
    min_reliability: Annotated[float, Field(ge=0, le=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.trait is None) == (self.metric is None):
            both = self.trait is not None
            raise PydanticCustomError(
                "invalid_field",
                "{reason}",
                {
                    "reason": "a field reads one trait or one metric"
                    + (", not both" if both else ""),
                    "field": "metric" if both else "trait",
                    "hint": "give `trait: NAME` (e.g. first_name) or `metric: NAME` (e.g. "
                    "clv_tier), not both",
                },
            )
        if self.metric is not None and self.metric not in TEMPLATE_METRICS:
            raise PydanticCustomError(
                "invalid_field",
                "{reason}",
                {
                    "reason": f"unknown metric {self.metric!r}",
                    "field": "metric",
                    "hint": "use points, clv_tier, best_channel, top_category or a column of "
                    "derived_metrics (see `surmesure segment --help`)",
                },
            )
        return self

    @property
    def reads(self) -> str:
        """What the field reads: ``trait NAME`` or ``metric NAME``."""
        return f"trait {self.trait}" if self.trait is not None else f"metric {self.metric}"
