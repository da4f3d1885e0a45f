"""The SQL interpreter: a definition -> one ``SELECT person_id`` of the current persons matching.

The same SQLAlchemy Core expression runs on DuckDB and PostgreSQL. Every condition becomes
``person_id IN (subquery)`` (or its negation), so the logic stays two-valued: missing data makes
a condition false, and ``not`` of it true. The meaning is the in-memory one
(:mod:`surmesure.segment.evaluate`); ``tests/segment/cases/conformance.json`` proves it.

Time: rows after ``now`` are ignored; windows are ``[now - within_days, now]``, both ends in.
Traits are resolved in SQL as :mod:`surmesure.domain.traits` does: highest effective reliability
``reliability * 0.5 ** (age_days / half_life_days)`` (age clamped at 0), ties to the most recent,
then to the smallest source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, assert_never

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from surmesure.domain.segments import (
    AllNode,
    AnyNode,
    BucketNode,
    Condition,
    ConsentNode,
    EventNode,
    MetricNode,
    NearNode,
    NotNode,
    PurchaseNode,
    SegmentDefinition,
    SegmentNode,
    TraitNode,
)
from surmesure.segment.definitions import Catalog, closure
from surmesure.segment.dialect import Json, bucket_hash, compare
from surmesure.store import schema

EARTH_RADIUS_KM = 6371.0088
HOME_STORE_TRAIT = "home_store_id"


@dataclass(frozen=True)
class Compiler:
    dialect: str
    now: datetime
    half_life_days: float
    catalog: Catalog

    @property
    def json(self) -> Json:
        return Json(self.dialect)

    def at(self) -> ColumnElement[datetime]:
        return sa.literal(self.now, sa.DateTime)

    def since(self, within_days: int) -> ColumnElement[datetime]:
        return sa.literal(self.now - timedelta(days=within_days), sa.DateTime)

    def condition(self, node: Condition, pid: ColumnElement[int]) -> ColumnElement[bool]:
        match node:
            case AllNode(all=items):
                return sa.and_(*(self.condition(item, pid) for item in items))
            case AnyNode(any=items):
                return sa.or_(*(self.condition(item, pid) for item in items))
            case NotNode(not_=inner):
                return sa.not_(self.condition(inner, pid))
            case TraitNode(trait=c):
                resolved = self.trait(c.name)
                held = sa.select(resolved.c.person_id).where(resolved.c.rn == 1)
                if c.min_reliability is not None:
                    held = held.where(resolved.c.eff >= c.min_reliability)
                if c.op == "missing":
                    return sa.not_(pid.in_(held))
                if c.op != "exists":
                    held = held.where(self.json.compare(resolved.c.value, c.op, c.value))
                return pid.in_(held)
            case MetricNode(metric=c):
                latest = self.metrics()
                column = latest.c[c.name]
                present = sa.select(latest.c.person_id).where(latest.c.rn == 1)
                if c.op == "missing":
                    return sa.not_(pid.in_(present.where(column.is_not(None))))
                return pid.in_(present.where(compare(column, c.op, c.value)))
            case EventNode():
                return self.events(node, pid)
            case PurchaseNode():
                return pid.in_(self.purchases(node))
            case ConsentNode(consent=c):
                granted = pid.in_(self.consent(c.purpose, c.channel))
                return granted if c.granted else sa.not_(granted)
            case NearNode():
                return pid.in_(self.near(node))
            case SegmentNode(segment=name):
                return self.condition(self.catalog[name].where, pid)
            case BucketNode(bucket=b):
                hashed = bucket_hash(self.dialect, b.salt, pid)
                return sa.and_(hashed >= b.start * 2.0**32, hashed < b.end * 2.0**32)
            case _:
                assert_never(node)

    def trait(self, name: str) -> sa.Subquery:
        """Observations of trait ``name`` ranked per person (columns person_id, value, eff,
        rn): the row with ``rn = 1`` is the resolved value."""
        t = schema.traits
        age_days = sa.func.greatest(
            sa.cast(sa.extract("epoch", self.at() - t.c.observed_at), sa.Float(precision=53))
            / 86_400.0,
            0.0,
        )
        eff = t.c.reliability * sa.func.power(0.5, age_days / self.half_life_days)
        return (
            sa.select(
                t.c.person_id,
                t.c.value,
                eff.label("eff"),
                sa.func.row_number()
                .over(
                    partition_by=t.c.person_id,
                    order_by=(eff.desc(), t.c.observed_at.desc(), t.c.source.asc()),
                )
                .label("rn"),
            )
            .where(
                t.c.name == name,
                t.c.person_id.is_not(None),
                sa.not_(self.json.is_null(t.c.value)),
                t.c.observed_at <= self.at(),
            )
            .subquery()
        )

    def metrics(self) -> sa.Subquery:
        m = schema.derived_metrics
        rn = sa.func.row_number().over(
            partition_by=m.c.person_id, order_by=(m.c.computed_on.desc(), m.c.computed_at.desc())
        )
        return sa.select(m, rn.label("rn")).where(m.c.computed_at <= self.at()).subquery()

    def events(self, node: EventNode, pid: ColumnElement[int]) -> ColumnElement[bool]:
        c, e = node.event, schema.events
        where = [e.c.person_id.is_not(None), e.c.occurred_at <= self.at()]
        if c.within_days is not None:
            where.append(e.c.occurred_at >= self.since(c.within_days))
        if c.type is not None:
            where.append(e.c.type == c.type)
        if c.name is not None:
            where.append(e.c.event == c.name)
        for key, value in sorted(c.properties.items()):
            where.append(self.json.compare(self.json.key(e.c.properties, key), "eq", value))
        grouped = sa.select(e.c.person_id).where(*where).group_by(e.c.person_id)
        count = sa.func.count()
        if c.min_count <= 0:
            if c.max_count is None:
                return sa.true()
            return sa.not_(pid.in_(grouped.having(count > c.max_count)))
        having = [count >= c.min_count]
        if c.max_count is not None:
            having.append(count <= c.max_count)
        return pid.in_(grouped.having(*having))

    def purchases(self, node: PurchaseNode) -> sa.Select[Any]:
        c, o = node.purchase, schema.orders
        where = [o.c.person_id.is_not(None), sa.not_(o.c.is_return), o.c.ordered_at <= self.at()]
        if c.within_days is not None:
            where.append(o.c.ordered_at >= self.since(c.within_days))
        if c.product is None and c.category is None:
            query = sa.select(o.c.person_id).where(*where)
            having = [sa.func.count() >= c.min_count]
            amount: Any = sa.func.sum(o.c.total_amount)
        else:
            lines, products = schema.order_lines, schema.products
            joined = o.join(lines, lines.c.order_id == o.c.order_id)
            if c.product is not None:
                where.append(lines.c.product_code == c.product)
            else:
                joined = joined.join(products, products.c.product_code == lines.c.product_code)
                where.append(products.c.category == c.category)
            query = sa.select(o.c.person_id).select_from(joined).where(*where)
            having = [sa.func.count(sa.distinct(o.c.order_id)) >= c.min_count]
            amount = sa.func.sum(lines.c.amount)
        if c.min_amount is not None:
            having.append(amount >= c.min_amount)
        return query.group_by(o.c.person_id).having(*having)

    def consent(self, purpose: str, channel: str) -> sa.Select[Any]:
        """Persons whose latest consent (up to ``now``) for purpose and channel is granted."""
        k = schema.consents
        rn = sa.func.row_number().over(
            partition_by=k.c.person_id, order_by=(k.c.recorded_at.desc(), k.c.consent_id.desc())
        )
        latest = (
            sa.select(k.c.person_id, k.c.granted, rn.label("rn"))
            .where(
                k.c.person_id.is_not(None),
                k.c.purpose == purpose,
                k.c.channel == channel,
                k.c.recorded_at <= self.at(),
            )
            .subquery()
        )
        return sa.select(latest.c.person_id).where(latest.c.rn == 1, latest.c.granted)

    def near(self, node: NearNode) -> sa.Select[Any]:
        c = node.near
        home = self.trait(HOME_STORE_TRAIT)
        s = schema.stores.alias("home_store")
        home_id = self.json.as_kind(home.c.value, "string")
        query = (
            sa.select(home.c.person_id)
            .select_from(home.join(s, s.c.store_id == home_id))
            .where(home.c.rn == 1, s.c.latitude.is_not(None), s.c.longitude.is_not(None))
        )
        if c.store is not None:
            target = schema.stores.alias("target_store")
            query = query.join(target, target.c.store_id == c.store)
            lat: Any = target.c.latitude
            lon: Any = target.c.longitude
            query = query.where(lat.is_not(None), lon.is_not(None))
        else:
            lat, lon = sa.literal(c.lat, sa.Float(precision=53)), sa.literal(c.lon)
        return query.where(haversine_km(s.c.latitude, s.c.longitude, lat, lon) <= c.radius_km)


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> ColumnElement[float]:
    f = sa.func
    half = f.power(f.sin(f.radians(lat2 - lat1) / 2.0), 2) + f.cos(f.radians(lat1)) * f.cos(
        f.radians(lat2)
    ) * f.power(f.sin(f.radians(lon2 - lon1) / 2.0), 2)
    return 2.0 * EARTH_RADIUS_KM * f.asin(f.least(f.sqrt(half), 1.0))


def members_query(
    definition: SegmentDefinition,
    *,
    dialect: str,
    now: datetime,
    half_life_days: float,
    catalog: Catalog,
) -> sa.Select[Any]:
    """``SELECT person_id`` of the current persons (``merged_into IS NULL``) in the segment."""
    compiler = Compiler(dialect, now, half_life_days, closure(definition, catalog))
    people = schema.people
    return sa.select(people.c.person_id).where(
        people.c.merged_into.is_(None), compiler.condition(definition.where, people.c.person_id)
    )
