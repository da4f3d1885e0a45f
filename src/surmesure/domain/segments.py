"""Segment definitions: a small document naming who belongs, validated before anything runs.

A definition is a name, a description and one condition tree under ``where``. A condition is a
one-key mapping whose key names its kind (the tag)::

    trait     resolved trait compared to a value (op eq/ne/in/lt/le/gt/ge/contains/exists/missing;
              min_reliability: a trait whose effective reliability is below it counts as missing)
    metric    column of the person's latest derived_metrics row, same ops
    event     events performed: type, name, properties equal, count in [min_count, max_count],
              optionally only within_days
    purchase  orders (not returns), optionally of a product or a category, within_days,
              at least min_count orders and min_amount spent
    consent   consent in force for a purpose and channel (no record: not granted)
    near      home store (trait ``home_store_id``) within radius_km of a store or a point
    segment   member of another segment (by name)
    bucket    deterministic hash of salt and person id falls in [from, to)
    all / any / not   nesting

Windows are closed intervals ``[now - within_days, now]`` (both ends included), in naive UTC.
Comparisons are typed: a string never equals a number; ``lt``/``le``/``gt``/``ge`` take numbers;
``ne`` means "present and different"; every op except ``missing`` is false on missing data.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

Scalar: TypeAlias = StrictBool | StrictInt | StrictFloat | StrictStr
Value: TypeAlias = Scalar | list[Scalar] | None
Op = Literal["eq", "ne", "in", "lt", "le", "gt", "ge", "contains", "exists", "missing"]
Kind = Literal["string", "number", "boolean"]
EventType = Literal["track", "page", "screen", "identify", "group", "alias"]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

INDEXED_METRICS: frozenset[str] = frozenset({"customer_id"})
"""Metrics holding an identifier's blind index (:mod:`surmesure.protect.blind`): compared
whole, their values indexed first (:func:`surmesure.protect.blind.metric_value`)."""


def as_number(value: float) -> int | float:
    """A number as every reader hands it to templates and rules: whole values as ``int``."""
    return int(value) if float(value).is_integer() else float(value)


OPS_FOR_KIND: dict[Kind, tuple[Op, ...]] = {
    "string": ("eq", "ne", "in", "contains", "exists", "missing"),
    "number": ("eq", "ne", "in", "lt", "le", "gt", "ge", "exists", "missing"),
    "boolean": ("eq", "ne", "in", "exists", "missing"),
}

METRICS: dict[str, Kind] = {
    "rfm_segment": "string",
    "customer_id": "string",
    "r_score": "number",
    "f_score": "number",
    "m_score": "number",
    "fm_score": "number",
    "recency_days": "number",
    "frequency": "number",
    "monetary": "number",
    "repeat_purchases": "number",
    "purchase_span_days": "number",
    "customer_age_days": "number",
    "mean_repeat_value": "number",
    "expected_purchases": "number",
    "p_alive": "number",
    "expected_value": "number",
    "email_sent": "number",
    "email_opens": "number",
    "email_clicks": "number",
    "open_rate": "number",
    "click_rate": "number",
    "purchases_per_month": "number",
    "days_since_interaction": "number",
    "gap_regularity": "number",
    "nps_last": "number",
    "nps_group": "string",
    "csat_satisfied_share": "number",
    "ces_mean": "number",
    "appetence_email": "number",
    "appetence_sms": "number",
    "appetence_phone": "number",
    "appetence_paper": "number",
    "appetence_web": "number",
    "best_channel": "string",
    "preferred_store_id": "string",
    "preferred_store_km": "number",
    "top_category_1": "string",
    "top_category_2": "string",
    "top_category_3": "string",
    "top_category_share": "number",
    "top_product_code": "string",
    "category_breadth": "number",
    "upsell_potential": "number",
    "relational_engagement": "number",
    "transactional_engagement": "number",
    "engagement_score": "number",
    "p_purchase_30d": "number",
    "p_purchase_90d": "number",
}
"""Columns of ``derived_metrics`` a segment may test, with the kind of their values."""


def kind_of(value: Any) -> Kind | None:
    """The kind of a JSON scalar, ``None`` for anything else (null, list, object)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _invalid(reason: str, hint: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_condition", "{reason}", {"reason": reason, "hint": hint})


def check_op(op: Op, value: Value, expected: Kind | None = None) -> Kind | None:
    """The kind ``op`` compares, or a validation error naming the fix."""
    if op in ("exists", "missing"):
        if value is not None:
            raise _invalid(f"op {op} takes no value", "remove `value`")
        return None
    if op == "in":
        if not isinstance(value, list) or not value:
            raise _invalid("op in needs a non-empty list", "give `value: [a, b, ...]`")
        kinds = {kind_of(v) for v in value}
        if len(kinds) != 1:
            raise _invalid("op in needs values of one kind", "use only strings or only numbers")
        kind = kinds.pop()
    else:
        kind = kind_of(value)
        if kind is None:
            raise _invalid(f"op {op} needs one value", "give `value: <string|number|boolean>`")
    assert kind is not None
    if expected is not None and kind != expected:
        raise _invalid(
            f"value {value!r} is a {kind}, this field holds {expected} values",
            f"compare with a {expected}",
        )
    if op not in OPS_FOR_KIND[kind]:
        raise _invalid(
            f"op {op} does not apply to a {kind} value {value!r}",
            f"use one of {', '.join(OPS_FOR_KIND[kind])}",
        )
    return kind


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TraitCondition(_Model):
    name: str = Field(min_length=1)
    op: Op
    value: Value = None
    min_reliability: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _typed(self) -> TraitCondition:
        check_op(self.op, self.value)
        return self


class MetricCondition(_Model):
    name: str
    op: Op
    value: Value = None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in METRICS:
            raise _invalid(f"unknown metric {name!r}", f"use one of {', '.join(sorted(METRICS))}")
        return name

    @model_validator(mode="after")
    def _typed(self) -> MetricCondition:
        check_op(self.op, self.value, METRICS[self.name])
        if self.name in INDEXED_METRICS and self.op == "contains":
            raise _invalid(
                f"metric {self.name} is stored as a blind index of the whole value, so op "
                "contains cannot look inside it",
                f"compare whole values: {self.name} eq, ne or in",
            )
        return self


#: the longest window in days (a hundred years: longer than any history, and a start that
#: stays a date; a larger one would fail in the SQL rather than at the field)
MAX_DAYS = 36_525
#: the largest count of events or purchases (what a 32-bit SQL integer holds)
MAX_COUNT = 2**31 - 1


class EventCondition(_Model):
    type: EventType | None = None
    name: str | None = None
    properties: dict[str, Scalar] = Field(default_factory=dict)
    within_days: int | None = Field(default=None, ge=0, le=MAX_DAYS)
    min_count: int = Field(default=1, ge=0, le=MAX_COUNT)
    max_count: int | None = Field(default=None, ge=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _counts(self) -> EventCondition:
        if self.max_count is not None and self.max_count < self.min_count:
            raise _invalid("max_count is below min_count", "raise max_count or lower min_count")
        return self


class PurchaseCondition(_Model):
    product: str | None = None
    category: str | None = None
    within_days: int | None = Field(default=None, ge=0, le=MAX_DAYS)
    min_count: int = Field(default=1, ge=1, le=MAX_COUNT)
    min_amount: float | None = Field(default=None, ge=0.0)

    @model_validator(mode="after")
    def _one_filter(self) -> PurchaseCondition:
        if self.product is not None and self.category is not None:
            raise _invalid("both product and category given", "keep one of them")
        return self


class ConsentCondition(_Model):
    purpose: str
    channel: str
    granted: bool = True


class NearCondition(_Model):
    store: str | None = None
    lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    lon: float | None = Field(default=None, ge=-180.0, le=180.0)
    radius_km: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _one_place(self) -> NearCondition:
        point = self.lat is not None and self.lon is not None
        if (self.store is not None) == point or (not point and self.lat != self.lon):
            raise _invalid("near needs a store or a point", "give `store: ID` or `lat` and `lon`")
        return self


class BucketCondition(_Model):
    salt: str = Field(min_length=1)
    start: float = Field(alias="from", ge=0.0, le=1.0)
    end: float = Field(alias="to", ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> BucketCondition:
        if self.start >= self.end:
            raise _invalid("bucket from must be below to", "e.g. from: 0.0, to: 0.1")
        return self


class TraitNode(_Model):
    trait: TraitCondition


class MetricNode(_Model):
    metric: MetricCondition


class EventNode(_Model):
    event: EventCondition


class PurchaseNode(_Model):
    purchase: PurchaseCondition


class ConsentNode(_Model):
    consent: ConsentCondition


class NearNode(_Model):
    near: NearCondition


class SegmentNode(_Model):
    segment: Name


class BucketNode(_Model):
    bucket: BucketCondition


class AllNode(_Model):
    all: list[Condition] = Field(min_length=1)


class AnyNode(_Model):
    any: list[Condition] = Field(min_length=1)


class NotNode(_Model):
    not_: Condition = Field(alias="not")


TAGS: dict[str, type[_Model]] = {
    "trait": TraitNode,
    "metric": MetricNode,
    "event": EventNode,
    "purchase": PurchaseNode,
    "consent": ConsentNode,
    "near": NearNode,
    "segment": SegmentNode,
    "bucket": BucketNode,
    "all": AllNode,
    "any": AnyNode,
    "not": NotNode,
}
_TAG_OF = {cls: tag for tag, cls in TAGS.items()}


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(next(iter(value))) if len(value) == 1 and next(iter(value)) in TAGS else None
    return _TAG_OF.get(type(value))


Condition: TypeAlias = Annotated[
    Annotated[TraitNode, Tag("trait")]
    | Annotated[MetricNode, Tag("metric")]
    | Annotated[EventNode, Tag("event")]
    | Annotated[PurchaseNode, Tag("purchase")]
    | Annotated[ConsentNode, Tag("consent")]
    | Annotated[NearNode, Tag("near")]
    | Annotated[SegmentNode, Tag("segment")]
    | Annotated[BucketNode, Tag("bucket")]
    | Annotated[AllNode, Tag("all")]
    | Annotated[AnyNode, Tag("any")]
    | Annotated[NotNode, Tag("not")],
    Discriminator(
        _tag,
        custom_error_type="invalid_condition",
        custom_error_message="a condition is a mapping with one key among " + ", ".join(TAGS),
    ),
]

for _cls in (AllNode, AnyNode, NotNode):
    _cls.model_rebuild()


class SegmentDefinition(_Model):
    """One version of a segment, as saved, compared and compiled."""

    name: Name
    description: str = ""
    where: Condition

    def document(self) -> dict[str, Any]:
        """The definition as plain JSON data (aliases such as ``not`` and ``from`` restored)."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


Leaf: TypeAlias = (
    TraitNode
    | MetricNode
    | EventNode
    | PurchaseNode
    | ConsentNode
    | NearNode
    | SegmentNode
    | BucketNode
)


def walk(condition: Condition, path: str = "where") -> Iterator[tuple[str, Leaf]]:
    """Every leaf condition under ``condition`` with its path (``where.all[2].metric``)."""
    match condition:
        case AllNode(all=items) | AnyNode(any=items):
            tag = "all" if isinstance(condition, AllNode) else "any"
            for i, item in enumerate(items):
                yield from walk(item, f"{path}.{tag}[{i}]")
        case NotNode(not_=inner):
            yield from walk(inner, f"{path}.not")
        case _:
            yield f"{path}.{_TAG_OF[type(condition)]}", condition
