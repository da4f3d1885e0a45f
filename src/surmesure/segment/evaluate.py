"""The in-memory interpreter: does one person, seen as a :class:`Snapshot`, match a definition?

Pure: no I/O. :mod:`surmesure.segment.snapshot` builds the snapshot from the store. The meaning
is the SQL one (:mod:`surmesure.segment.sql`), proven by the shared conformance table:

- rows after ``now`` do not exist; windows are ``[now - within_days, now]``, both ends in;
- comparisons are typed (a string never equals a number); ``ne`` is "present and not equal";
  every op but ``missing`` is false on missing data;
- a trait whose resolved effective reliability is below ``min_reliability`` is missing;
- consent is the rule of :mod:`surmesure.protect.consent` (no record: not granted);
- a segment reference is evaluated on the same snapshot;
- a ``customer_id`` metric is compared through its blind index under the store's
  ``index_key`` (:func:`surmesure.protect.blind.index_key`), handed in by the caller.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, assert_never

from surmesure.domain.segments import (
    AllNode,
    AnyNode,
    BucketNode,
    Condition,
    ConsentNode,
    EventCondition,
    EventNode,
    MetricNode,
    NearNode,
    NotNode,
    Op,
    PurchaseCondition,
    PurchaseNode,
    Scalar,
    SegmentDefinition,
    SegmentNode,
    TraitNode,
    kind_of,
)
from surmesure.protect import blind, consent
from surmesure.protect.consent import Record as ConsentRecord

EARTH_RADIUS_KM = 6371.0088
Point = tuple[float, float]


@dataclass(frozen=True)
class TraitValue:
    value: Any
    effective_reliability: float


@dataclass(frozen=True)
class EventRecord:
    type: str
    name: str | None
    occurred_at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderLine:
    product_code: str
    category: str | None
    amount: float


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    ordered_at: datetime
    total_amount: float
    is_return: bool = False
    lines: tuple[OrderLine, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """What the evaluator knows of one person. Times are naive UTC.

    ``traits`` are resolved (at the evaluation time, observations after it left out);
    ``metrics`` is the latest derived_metrics row (empty when none); ``home`` the (lat, lon) of
    the home store, ``None`` when unknown; ``places`` the coordinates of stores that ``near``
    conditions name."""

    person_id: int
    traits: Mapping[str, TraitValue] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[EventRecord, ...] = ()
    orders: tuple[OrderRecord, ...] = ()
    consents: tuple[ConsentRecord, ...] = ()
    home: Point | None = None
    places: Mapping[str, Point] = field(default_factory=dict)


def matches(value: Any, op: Op, operand: Scalar | list[Scalar] | None) -> bool:
    """Typed comparison of a present value (not ``None``) with the condition's operand."""
    if op in ("exists", "missing"):
        return True
    first = operand[0] if isinstance(operand, list) else operand
    same = kind_of(value) == kind_of(first)
    match op:
        case "eq":
            return same and value == operand
        case "ne":
            return not (same and value == operand)
        case "in":
            return same and isinstance(operand, list) and value in operand
        case "lt":
            return same and value < operand
        case "le":
            return same and value <= operand
        case "gt":
            return same and value > operand
        case "ge":
            return same and value >= operand
        case "contains":
            return same and str(operand) in value
    raise AssertionError(op)


def haversine_km(a: Point, b: Point) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    half = (
        math.sin((lat2 - lat1) / 2.0) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(math.sqrt(half), 1.0))


def bucket_of(salt: str, person_id: int) -> int:
    """The first 32 bits of ``md5(f"{salt}:{person_id}")``: the person's bucket x 2³²."""
    return int(hashlib.md5(f"{salt}:{person_id}".encode()).hexdigest()[:8], 16)


class Evaluator:
    """Evaluates definitions for one snapshot at ``now``; references resolved in ``catalog``
    and remembered for the evaluator's life."""

    def __init__(
        self,
        snapshot: Snapshot,
        now: datetime,
        catalog: Mapping[str, SegmentDefinition],
        index_key: bytes,
    ) -> None:
        self.snapshot = snapshot
        self.now = now
        self.catalog = catalog
        self.index_key = index_key
        self._segments: dict[str, bool] = {}

    def segment(self, name: str) -> bool:
        if name not in self._segments:
            self._segments[name] = self.condition(self.catalog[name].where)
        return self._segments[name]

    def condition(self, node: Condition) -> bool:
        s = self.snapshot
        match node:
            case AllNode(all=items):
                return all(self.condition(item) for item in items)
            case AnyNode(any=items):
                return any(self.condition(item) for item in items)
            case NotNode(not_=inner):
                return not self.condition(inner)
            case TraitNode(trait=c):
                held = s.traits.get(c.name)
                if held is not None and c.min_reliability is not None:
                    held = held if held.effective_reliability >= c.min_reliability else None
                if c.op == "missing":
                    return held is None
                return held is not None and matches(held.value, c.op, c.value)
            case MetricNode(metric=c):
                value = s.metrics.get(c.name)
                if c.op == "missing":
                    return value is None
                return value is not None and matches(
                    value, c.op, blind.metric_value(self.index_key, c.name, c.value)
                )
            case EventNode(event=c):
                return self.events(c)
            case PurchaseNode(purchase=c):
                return self.purchases(c)
            case ConsentNode(consent=c):
                return self.granted(c.purpose, c.channel) == c.granted
            case NearNode(near=c):
                target: Point | None
                if c.store is not None:
                    target = s.places.get(c.store)
                else:
                    assert c.lat is not None and c.lon is not None
                    target = (c.lat, c.lon)
                if s.home is None or target is None:
                    return False
                return haversine_km(s.home, target) <= c.radius_km
            case SegmentNode(segment=name):
                return self.segment(name)
            case BucketNode(bucket=b):
                hashed = bucket_of(b.salt, s.person_id)
                return b.start * 2.0**32 <= hashed < b.end * 2.0**32
            case _:
                assert_never(node)

    def _since(self, within_days: int | None) -> datetime:
        return datetime.min if within_days is None else self.now - timedelta(days=within_days)

    def events(self, c: EventCondition) -> bool:
        since = self._since(c.within_days)
        count = sum(
            1
            for e in self.snapshot.events
            if since <= e.occurred_at <= self.now
            and (c.type is None or e.type == c.type)
            and (c.name is None or e.name == c.name)
            and all(
                e.properties.get(k) is not None and matches(e.properties[k], "eq", v)
                for k, v in c.properties.items()
            )
        )
        return count >= c.min_count and (c.max_count is None or count <= c.max_count)

    def purchases(self, c: PurchaseCondition) -> bool:
        since = self._since(c.within_days)
        orders, amount = 0, 0.0
        for order in self.snapshot.orders:
            if order.is_return or not since <= order.ordered_at <= self.now:
                continue
            if c.product is None and c.category is None:
                orders, amount = orders + 1, amount + order.total_amount
                continue
            lines = [
                line
                for line in order.lines
                if (c.product is not None and line.product_code == c.product)
                or (c.category is not None and line.category == c.category)
            ]
            if lines:
                orders, amount = orders + 1, amount + sum(line.amount for line in lines)
        return orders >= c.min_count and (c.min_amount is None or amount >= c.min_amount)

    def granted(self, purpose: str, channel: str) -> bool:
        return consent.granted(self.snapshot.consents, purpose, channel, self.now)


def evaluate(
    definition: SegmentDefinition,
    snapshot: Snapshot,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition] | None = None,
    *,
    index_key: bytes,
) -> bool:
    """Whether the person of ``snapshot`` is in ``definition`` at ``now`` (identifiers
    compared through their blind index under ``index_key``, the store's)."""
    known = {**(catalog or {}), definition.name: definition}
    return Evaluator(snapshot, now, known, index_key).segment(definition.name)
