"""The batch interpreter in Ibis: a definition -> one Ibis expression of the persons matching.

The meaning is the SQL one (:mod:`surmesure.segment.sql`) and the in-memory one
(:mod:`surmesure.segment.evaluate`), proven by the same table
(``tests/segment/cases/conformance.json``) on DuckDB, PostgreSQL and Spark. The shape follows
:mod:`surmesure.segment.sql`: every condition is ``person_id IN (subquery)`` (or its negation),
so logic stays two-valued; rows after ``now`` are ignored; windows are
``[now - within_days, now]``; traits resolve by effective reliability
``reliability * 0.5 ** (age_days / half_life_days)`` (age clamped at 0), then recency, then
source. JSON is read through the typed columns of :mod:`surmesure.segment.ibis_tables`.

It is the plain plan (no chain of materialized steps): an engine such as Spark plans the
semi-joins itself, and the SQLAlchemy compiler stays the fast path on the store.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, assert_never

import ibis
import ibis.expr.types as ir

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
    Op,
    PurchaseNode,
    Scalar,
    SegmentDefinition,
    SegmentNode,
    TraitNode,
    kind_of,
)
from surmesure.protect import blind
from surmesure.protect.consent import ANY
from surmesure.segment.definitions import Catalog, closure
from surmesure.segment.ibis_tables import Tables
from surmesure.segment.sql import EARTH_RADIUS_KM, HOME_STORE_TRAIT

HEX = "0123456789abcdef"
ORDERING = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@dataclass(frozen=True)
class IbisCompiler:
    tables: Tables
    now: datetime
    half_life_days: float
    catalog: Catalog
    index_key: bytes
    """The store's blind-index key (:func:`surmesure.protect.blind.index_key`)."""

    def at(self) -> ir.TimestampScalar:
        return ibis.timestamp(self.now)

    def since(self, within_days: int) -> ir.TimestampScalar:
        return ibis.timestamp(self.now - timedelta(days=within_days))

    def condition(self, node: Condition, pid: ir.IntegerColumn) -> ir.BooleanValue:
        """True for the persons ``pid`` matching ``node``."""
        match node:
            case AllNode(all=items):
                return ibis.and_(*(self.condition(item, pid) for item in items))
            case AnyNode(any=items):
                return ibis.or_(*(self.condition(item, pid) for item in items))
            case NotNode(not_=inner):
                return ~self.condition(inner, pid)
            case TraitNode(trait=c):
                resolved = self.trait(c.name)
                if c.min_reliability is not None:
                    resolved = resolved.filter(resolved.eff >= c.min_reliability)
                if c.op == "missing":
                    return ~pid.isin(resolved.person_id)
                if c.op != "exists":
                    resolved = resolved.filter(typed_compare(resolved, "value", c.op, c.value))
                return pid.isin(resolved.person_id)
            case MetricNode(metric=c):
                latest = self.metrics()
                value = latest[c.name]
                if c.op == "missing":
                    return ~pid.isin(latest.filter(value.notnull()).person_id)
                wanted = blind.metric_value(self.index_key, c.name, c.value)
                return pid.isin(latest.filter(compare(value, c.op, wanted)).person_id)
            case EventNode():
                return self.events(node, pid)
            case PurchaseNode():
                return pid.isin(self.purchases(node).person_id)
            case ConsentNode(consent=c):
                granted = pid.isin(self.consent(c.purpose, c.channel).person_id)
                return granted if c.granted else ~granted
            case NearNode():
                return pid.isin(self.near(node).person_id)
            case SegmentNode(segment=name):
                return self.condition(self.catalog[name].where, pid)
            case BucketNode(bucket=b):
                hashed = bucket_hash(b.salt, pid)
                return (hashed >= b.start * 2.0**32) & (hashed < b.end * 2.0**32)
            case _:
                assert_never(node)

    def trait(self, name: str) -> ir.Table:
        """Per person, the resolved observation of trait ``name``: ``person_id``, ``eff`` and
        the typed ``value_*`` columns."""
        t = self.tables["traits"]
        t = t.filter(
            t.name == name,
            t.person_id.notnull(),
            t.sealed | t.value_held,
            t.observed_at <= self.at(),
        )
        seconds = self.at().epoch_seconds() - t.observed_at.epoch_seconds()
        age_days = ibis.greatest(seconds.cast("float64") / 86_400.0, 0.0)
        eff = t.reliability.cast("float64") * ibis.literal(0.5) ** (age_days / self.half_life_days)
        t = t.mutate(eff=eff)
        rn = ibis.row_number().over(
            group_by=t.person_id, order_by=[t.eff.desc(), t.observed_at.desc(), t.source.asc()]
        )
        return t.mutate(rn=rn).filter(lambda r: r.rn == 0)

    def metrics(self) -> ir.Table:
        """Per person, the latest derived_metrics row known at ``now`` (a row is known from
        its ``as_of`` day on)."""
        m = self.tables["derived_metrics"]
        m = m.filter(m.as_of <= ibis.date(self.now.date()))
        rn = ibis.row_number().over(
            group_by=m.person_id, order_by=[m.as_of.desc(), m.computed_at.desc()]
        )
        return m.mutate(rn=rn).filter(lambda r: r.rn == 0)

    def events(self, node: EventNode, pid: ir.IntegerColumn) -> ir.BooleanValue:
        c, e = node.event, self.tables["events"]
        where = [e.person_id.notnull(), e.occurred_at <= self.at()]
        if c.within_days is not None:
            where.append(e.occurred_at >= self.since(c.within_days))
        if c.type is not None:
            where.append(e.type == c.type)
        if c.name is not None:
            where.append(e.event == c.name)
        for key, value in sorted(c.properties.items()):
            where.append(typed_compare(e, self.tables.prop(key), "eq", value).fill_null(False))
        performed = e.filter(*where)
        if c.min_count <= 0:
            if c.max_count is None:
                return ibis.literal(True)
            counts = performed.group_by("person_id").aggregate(n=performed.count())
            return ~pid.isin(counts.filter(counts.n > c.max_count).person_id)
        if c.min_count == 1 and c.max_count is None:
            return pid.isin(performed.person_id)
        counts = performed.group_by("person_id").aggregate(n=performed.count())
        having = [counts.n >= c.min_count]
        if c.max_count is not None:
            having.append(counts.n <= c.max_count)
        return pid.isin(counts.filter(*having).person_id)

    def purchases(self, node: PurchaseNode) -> ir.Table:
        c, o = node.purchase, self.tables["orders"]
        where = [o.person_id.notnull(), ~o.is_return, o.ordered_at <= self.at()]
        if c.within_days is not None:
            where.append(o.ordered_at >= self.since(c.within_days))
        orders = o.filter(*where)
        if c.product is None and c.category is None:
            rows = orders.select("person_id", "order_id", amount=orders.total_amount)
        else:
            lines = self.tables["order_lines"]
            if c.product is not None:
                lines = lines.filter(lines.product_code == c.product)
            else:
                products = self.tables["products"]
                wanted = products.filter(products.category == c.category).product_code
                lines = lines.filter(lines.product_code.isin(wanted))
            joined = orders.join(lines, "order_id")
            rows = joined.select("person_id", "order_id", amount=lines.amount)
        if c.min_amount is None and c.min_count == 1:
            return rows  # one order is enough: a semi-join, no grouping
        grouped = rows.group_by("person_id").aggregate(
            n=rows.order_id.nunique(), amount=rows.amount.cast("float64").sum()
        )
        having = [grouped.n >= c.min_count]
        if c.min_amount is not None:
            having.append(grouped.amount >= c.min_amount)
        return grouped.filter(*having)

    def consent(self, purpose: str, channel: str) -> ir.Table:
        """Persons whose consent in force at ``now`` grants purpose on channel (the rule of
        :mod:`surmesure.protect.consent`)."""
        k = self.tables["consents"]
        k = k.filter(
            k.person_id.notnull(),
            k.purpose == purpose,
            k.channel.isin(sorted({channel, ANY})),
            k.recorded_at <= self.at(),
        )
        specific = ibis.ifelse(k.channel == ANY, 0, 1)
        rn = ibis.row_number().over(
            group_by=k.person_id,
            order_by=[k.recorded_at.desc(), specific.desc(), k.consent_id.desc()],
        )
        latest = k.mutate(rn=rn)
        return latest.filter(latest.rn == 0, latest.granted)

    def near(self, node: NearNode) -> ir.Table:
        c, s = node.near, self.tables["stores"]
        home = s.filter(s.latitude.notnull(), s.longitude.notnull())
        if c.store is not None:
            target = s.filter(s.store_id == c.store).select(
                lat=s.latitude.cast("float64"), lon=s.longitude.cast("float64")
            )
            pairs = home.cross_join(target)
            distance = haversine_km(pairs.latitude, pairs.longitude, pairs.lat, pairs.lon)
            close = pairs.filter(distance <= c.radius_km).store_id
        else:
            distance = haversine_km(home.latitude, home.longitude, c.lat, c.lon)
            close = home.filter(distance <= c.radius_km).store_id
        resolved = self.trait(HOME_STORE_TRAIT)
        return resolved.filter(resolved.value_text.isin(close))


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> ir.FloatingValue:
    def rad(x: Any) -> Any:
        return ibis.literal(x).radians() if isinstance(x, float) else x.cast("float64").radians()

    la1, lo1, la2, lo2 = rad(lat1), rad(lon1), rad(lat2), rad(lon2)
    half = ((la2 - la1) / 2.0).sin() ** 2 + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin() ** 2
    return 2.0 * EARTH_RADIUS_KM * ibis.least(half.sqrt(), 1.0).asin()


@ibis.udf.scalar.builtin  # type: ignore[untyped-decorator]
def md5(value: str) -> str:  # type: ignore[empty-body]
    """The engine's own ``md5`` (hex digest of a string): DuckDB, PostgreSQL and Spark all
    have it, under this name (Ibis's ``hexdigest`` has no PostgreSQL rule)."""


def bucket_hash(salt: str, person_id: ir.IntegerValue) -> ir.FloatingValue:
    """The first 32 bits of ``md5(salt || ':' || person_id)`` as an integer in [0, 2³²),
    read digit by digit (no engine-neutral hex parser)."""
    digest = md5(ibis.literal(f"{salt}:") + person_id.cast("string"))
    total: Any = ibis.literal(0.0)
    for k in range(8):  # doubles hold 2³² exactly; engines keep an integer sum in 32 bits
        digit = ibis.literal(HEX).find(digest.substr(k, 1)).cast("float64")
        total = total + digit * float(16 ** (7 - k))
    return total


def typed_compare(
    table: ir.Table, prefix: str, op: Op, operand: Scalar | list[Scalar] | None
) -> ir.BooleanValue:
    """``value op operand`` on the typed columns ``prefix_*`` of a JSON value (``exists`` and
    ``missing`` are the caller's): compared with the column of the operand's kind."""
    first = operand[0] if isinstance(operand, list) else operand
    kind = kind_of(first)
    column = {"string": "text", "number": "number", "boolean": "flag"}[kind or "string"]
    value = table[f"{prefix}_{column}"]
    if op == "ne":  # present and not equal, whatever its kind
        return ~compare(value, "eq", operand).fill_null(False)
    return compare(value, op, operand)


def compare(column: Any, op: Op, operand: Any) -> ir.BooleanValue:
    """``column op operand`` (NULL stays NULL, so false); numbers are compared as doubles."""
    if kind_of(operand[0] if isinstance(operand, list) else operand) == "number":
        column = column.cast("float64")
        operand = [float(v) for v in operand] if isinstance(operand, list) else float(operand)
    if op in ORDERING:
        return ORDERING[op](column, operand)
    if op == "in":
        return column.isin(list(operand))
    if op == "contains":
        return column.contains(operand)
    return column.notnull()


def members(
    definition: SegmentDefinition,
    tables: Tables,
    *,
    now: datetime,
    half_life_days: float,
    catalog: Catalog,
    index_key: bytes,
) -> ir.Table:
    """The current persons (``merged_into IS NULL``) in the segment: one column ``person_id``
    (identifiers compared through their blind index under ``index_key``, the store's)."""
    compiler = IbisCompiler(tables, now, half_life_days, closure(definition, catalog), index_key)
    people = tables["people"]
    current = people.filter(people.merged_into.isnull())
    return current.filter(compiler.condition(definition.where, current.person_id)).select(
        "person_id"
    )
