"""The SQL interpreter: a definition -> one ``SELECT person_id`` of the current persons matching.

The same SQLAlchemy Core expression runs on DuckDB and PostgreSQL. Every condition becomes
``person_id IN (subquery)`` (or its negation), so the logic stays two-valued: missing data makes
a condition false, and ``not`` of it true. The meaning is the in-memory one
(:mod:`surmesure.segment.evaluate`); ``tests/segment/cases/conformance.json`` proves it.

Time: rows after ``now`` are ignored; windows are ``[now - within_days, now]``, both ends in.
Traits are resolved in SQL as :mod:`surmesure.domain.traits` does: highest effective reliability
``reliability * 0.5 ** (age_days / half_life_days)`` (age clamped at 0), ties to the most recent,
then to the smallest source.

Speed without a change of meaning: a top-level ``all`` (segment references to an ``all``
inlined) runs as a chain of materialized steps, the cheapest and most selective conditions
first (purchases, consents, events, then metrics, traits, distances); each later condition is
evaluated only for the persons still in, and its ranking of traits or metric rows is restricted
to them. Without such a scope, a ranking is restricted to the persons holding at least one row
that could satisfy the condition (the resolved row is one of a person's rows). "At least one
event" and "at least one order" (no amount) are plain semi-joins, with no grouping.
``fast=False`` compiles the plain plan, kept as the reference in the benchmark and the tests.
``counted`` (real-time rounds) reads an event count with no window and no property from
``event_counts`` (:mod:`surmesure.collect.counts`): a row per identity node and name, instead
of every event the persons sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, assert_never

import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

from surmesure.collect.counts import UNNAMED
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
    PurchaseNode,
    SegmentDefinition,
    SegmentNode,
    TraitNode,
)
from surmesure.protect import blind, consent
from surmesure.segment.definitions import Catalog, closure
from surmesure.segment.dialect import Json, bucket_hash, compare
from surmesure.store import schema

EARTH_RADIUS_KM = 6371.0088
HOME_STORE_TRAIT = "home_store_id"

Scope = sa.CTE | None
"""Persons a condition is evaluated for (a CTE with ``person_id``), ``None`` for everyone."""


@dataclass(frozen=True)
class Compiler:
    dialect: str
    now: datetime
    half_life_days: float
    catalog: Catalog
    index_key: bytes
    """The store's blind-index key (:func:`surmesure.protect.blind.index_key`): a
    ``customer_id`` metric is compared through its index under it."""
    fast: bool = True
    """``False`` compiles the plain plan (every ranking over everyone, every count grouped):
    the reference the benchmark and the tests compare the fast plan with."""
    named_times: bool = False
    """``now`` and the windows' starts as the named parameters :data:`NOW` and
    :func:`since_name` (values of :func:`times`), so one statement serves every ``now``."""
    counted: bool = False
    """Event conditions of a scope (real-time updates) read ``event_counts`` rather than
    ``events`` where the counts answer them exactly: see :meth:`performed`."""

    @property
    def json(self) -> Json:
        return Json(self.dialect)

    def at(self) -> ColumnElement[datetime]:
        if self.named_times:
            return sa.bindparam(NOW, self.now, type_=sa.DateTime)
        return sa.literal(self.now, sa.DateTime)

    def since(self, within_days: int) -> ColumnElement[datetime]:
        start = self.now - timedelta(days=within_days)
        if self.named_times:
            return sa.bindparam(since_name(within_days), start, type_=sa.DateTime)
        return sa.literal(start, sa.DateTime)

    def condition(
        self, node: Condition, pid: ColumnElement[int], scope: Scope = None
    ) -> ColumnElement[bool]:
        """True for the persons ``pid`` matching ``node``; exact for every ``pid`` in
        ``scope`` (the subqueries only look at the persons of ``scope``)."""
        match node:
            case AllNode(all=items):
                return sa.and_(*(self.condition(item, pid, scope) for item in items))
            case AnyNode(any=items):
                return sa.or_(*(self.condition(item, pid, scope) for item in items))
            case NotNode(not_=inner):
                return self.negation(inner, pid, scope)
            case TraitNode(trait=c) | MetricNode(metric=c) if c.op == "missing":
                return self.absent(pid, self.present(node, scope))
            case TraitNode() | MetricNode():
                found = self.holders(node, scope)
                assert found is not None
                return pid.in_(found)
            case EventNode():
                return self.events(node, pid, scope)
            case PurchaseNode():
                return pid.in_(self.purchases(node, scope))
            case ConsentNode(consent=c):
                granted = self.consent(c.purpose, c.channel, scope)
                return pid.in_(granted) if c.granted else self.absent(pid, granted)
            case NearNode():
                return pid.in_(self.near(node, scope))
            case SegmentNode(segment=name):
                return self.condition(self.catalog[name].where, pid, scope)
            case BucketNode(bucket=b):
                hashed = bucket_hash(self.dialect, b.salt, pid)
                return sa.and_(hashed >= b.start * 2.0**32, hashed < b.end * 2.0**32)
            case _:
                assert_never(node)

    def negation(
        self, node: Condition, pid: ColumnElement[int], scope: Scope
    ) -> ColumnElement[bool]:
        """``not node``, each ``IN`` turned into :meth:`absent` (De Morgan through ``all`` and
        ``any``: every condition is two-valued)."""
        match node:
            case NotNode(not_=inner):
                return self.condition(inner, pid, scope)
            case AllNode(all=items):
                return sa.or_(*(self.negation(item, pid, scope) for item in items))
            case AnyNode(any=items):
                return sa.and_(*(self.negation(item, pid, scope) for item in items))
            case SegmentNode(segment=name):
                return self.negation(self.catalog[name].where, pid, scope)
            case TraitNode(trait=c) | MetricNode(metric=c) if c.op == "missing":
                return pid.in_(self.present(node, scope))
            case TraitNode() | MetricNode() | NearNode():
                found = self.holders(node, scope)
                assert found is not None
                return self.absent(pid, found)
            case EventNode():
                return self.events(node, pid, scope, negate=True)
            case PurchaseNode():
                return self.absent(pid, self.purchases(node, scope))
            case ConsentNode(consent=c):
                granted = self.consent(c.purpose, c.channel, scope)
                return self.absent(pid, granted) if c.granted else pid.in_(granted)
            case _:
                return sa.not_(self.condition(node, pid, scope))

    def absent(self, pid: ColumnElement[int], held: sa.Select[Any]) -> ColumnElement[bool]:
        """``pid`` not among ``held``'s persons. PostgreSQL hashes a ``NOT IN`` subquery only
        when it fits in ``work_mem``, and otherwise scans it again for every person (a "not
        seen in 60 days" segment ran for half an hour on 230,000 people); ``NOT EXISTS`` is
        planned as an anti-join, as DuckDB plans both. Same meaning: the persons' lists hold
        no ``NULL``."""
        rows = held.subquery()
        return sa.not_(sa.exists().where(next(iter(rows.c)) == pid))

    def present(self, node: TraitNode | MetricNode, scope: Scope) -> sa.Select[Any]:
        """Persons holding a value for the trait or metric ``node`` says is ``missing``."""
        if isinstance(node, TraitNode):
            c = node.trait
            resolved = self.trait(c.name, scope, None)
            held = sa.select(resolved.c.person_id).where(resolved.c.rn == 1)
            if c.min_reliability is not None:
                held = held.where(resolved.c.eff >= c.min_reliability)
            return held
        latest = self.metrics(node.metric.name, scope, None)
        present = latest.c.rn == 1, latest.c.value.is_not(None)
        return sa.select(latest.c.person_id).where(*present)

    def holders(self, node: Condition, scope: Scope) -> sa.Select[Any] | None:
        """``SELECT person_id`` of the persons (of ``scope``, when given) who meet ``node``,
        each once, for a trait or metric that must hold (not ``missing``) or a distance: the
        resolved value's row (``rn = 1``) tested. ``None`` for any other condition."""
        match node:
            case TraitNode(trait=c) if c.op != "missing":
                resolved = self.trait(c.name, scope, c)
                held = sa.select(resolved.c.person_id).where(resolved.c.rn == 1)
                if c.min_reliability is not None:
                    held = held.where(resolved.c.eff >= c.min_reliability)
                if c.op != "exists":
                    held = held.where(self.json.compare(resolved.c.value, c.op, c.value))
                return held
            case MetricNode(metric=c) if c.op != "missing":
                wanted = blind.metric_value(self.index_key, c.name, c.value)
                test = compare(schema.derived_metrics.c[c.name], c.op, wanted)
                latest = self.metrics(c.name, scope, test)
                return sa.select(latest.c.person_id).where(
                    latest.c.rn == 1, compare(latest.c.value, c.op, wanted)
                )
            case NearNode():
                return self.near(node, scope)
            case _:
                return None

    def step(self, node: Condition, scope: sa.CTE) -> sa.Select[Any]:
        """The persons of the chain's ``scope`` who meet ``node``. For a trait, a metric or a
        distance, the rows of the condition's own ranking, already restricted to ``scope``,
        are the answer: testing ``scope``'s persons against them again (``IN``) would only
        add a semi-join, which PostgreSQL, its estimates shrinking along the chain to one
        row, ran as a nested loop re-ranking the rows once per person (quadratic: 182 s
        for the benchmark's segment over 10 million people)."""
        held = self.holders(node, scope)
        if held is not None:
            return held
        return sa.select(scope.c.person_id).where(self.condition(node, scope.c.person_id, scope))

    def trait(self, name: str, scope: Scope, wanted: Any = None) -> sa.Subquery:
        """Observations of trait ``name`` ranked per person (columns person_id, value, eff,
        rn): the row with ``rn = 1`` is the resolved value. Only persons of ``scope`` are
        ranked; with no scope and a condition ``wanted`` (a TraitCondition, or a predicate on
        the value), only persons with an observation that could satisfy it."""
        t = schema.traits
        age_days = sa.func.greatest(
            sa.cast(sa.extract("epoch", self.at() - t.c.observed_at), sa.Float(precision=53))
            / 86_400.0,
            0.0,
        )
        eff = t.c.reliability * sa.func.power(0.5, age_days / self.half_life_days)
        valid = [
            t.c.name == name,
            t.c.person_id.is_not(None),
            sa.or_(t.c.sealed.is_not(None), sa.not_(self.json.is_null(t.c.value))),
            t.c.observed_at <= self.at(),
        ]
        where = list(valid)
        if scope is not None:
            where.append(t.c.person_id.in_(sa.select(scope.c.person_id)))
        elif wanted is not None and self.fast:
            could = [*valid]
            if isinstance(wanted, ColumnElement):
                could.append(wanted)
            else:
                if wanted.min_reliability is not None:
                    could.append(eff >= wanted.min_reliability)
                if wanted.op != "exists":
                    could.append(self.json.compare(t.c.value, wanted.op, wanted.value))
            where.append(t.c.person_id.in_(sa.select(t.c.person_id).where(*could)))
        rn = sa.func.row_number().over(
            partition_by=t.c.person_id,
            order_by=(eff.desc(), t.c.observed_at.desc(), t.c.source.asc()),
        )
        return (
            sa.select(t.c.person_id, t.c.value, eff.label("eff"), rn.label("rn"))
            .where(*where)
            .subquery()
        )

    def metrics(self, name: str, scope: Scope, wanted: Any) -> sa.Subquery:
        """Rows of derived_metrics ranked per person, latest first (person_id, value of column
        ``name``, rn); restricted like :meth:`trait`. A row describes the world on its
        ``as_of`` day, so it is known from that day on, whenever it was computed (metrics
        computed today about last year serve a segment evaluated as of last year)."""
        m = schema.derived_metrics
        rn = sa.func.row_number().over(
            partition_by=m.c.person_id, order_by=(m.c.as_of.desc(), m.c.computed_at.desc())
        )
        known = m.c.as_of <= sa.cast(self.at(), sa.Date)
        where = [known]
        if scope is not None:
            where.append(m.c.person_id.in_(sa.select(scope.c.person_id)))
        elif wanted is not None and self.fast:
            could = sa.select(m.c.person_id).where(known, wanted)
            where.append(m.c.person_id.in_(could))
        return (
            sa.select(m.c.person_id, m.c[name].label("value"), rn.label("rn"))
            .where(*where)
            .subquery()
        )

    def events(
        self, node: EventNode, pid: ColumnElement[int], scope: Scope, negate: bool = False
    ) -> ColumnElement[bool]:
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
        if scope is not None:
            where.append(e.c.person_id.in_(sa.select(scope.c.person_id)))
        person: ColumnElement[int] = e.c.person_id
        performed = sa.select(person).where(*where)
        count: ColumnElement[Any] = sa.func.count()
        if scope is not None and self.counts(c):
            rows = self.performed(c, scope)
            person, count = rows.c.person_id, sa.func.sum(rows.c.n)
            performed = sa.select(person)
        if c.min_count <= 0:
            if c.max_count is None:
                return sa.false() if negate else sa.true()
            over = performed.group_by(person).having(count > c.max_count)
            return pid.in_(over) if negate else self.absent(pid, over)
        if c.min_count == 1 and c.max_count is None and self.fast:
            held = performed
        else:
            having = [count >= c.min_count]
            if c.max_count is not None:
                having.append(count <= c.max_count)
            held = performed.group_by(person).having(*having)
        return self.absent(pid, held) if negate else pid.in_(held)

    def counts(self, c: EventCondition) -> bool:
        """Whether ``event_counts`` answers ``c`` exactly for a scope's persons: no window
        and no property to test (a count keeps neither), and no name ``''`` (the counts' name
        of an event unnamed)."""
        return self.counted and c.within_days is None and not c.properties and c.name != UNNAMED

    def performed(self, c: EventCondition, scope: sa.CTE) -> sa.Subquery:
        """``(person_id, n)`` rows whose ``n`` add up, per person of ``scope``, to the number
        of events meeting ``c`` up to ``now``: a node's count when every event it counts is
        at or before ``now``; otherwise (an event dated ahead, a clock set wrong) 1 for each of
        that node's events read from ``events``, which a real-time round seldom needs (and an
        empty list of such nodes reads no event at all)."""
        k, e = schema.event_counts, schema.events
        where: list[ColumnElement[bool]] = [k.c.person_id.in_(sa.select(scope.c.person_id))]
        read: list[ColumnElement[bool]] = [e.c.occurred_at <= self.at()]
        if c.type is not None:
            where.append(k.c.type == c.type)
            read.append(e.c.type == c.type)
        if c.name is not None:
            where.append(k.c.event == c.name)
            read.append(e.c.event == c.name)
        ahead = sa.select(k.c.node_id).where(*where, k.c.last_at > self.at())
        counted = sa.select(k.c.person_id, k.c.count.label("n")).where(
            *where, k.c.node_id.not_in(ahead)
        )
        one = sa.literal(1, sa.BigInteger).label("n")
        each = sa.select(e.c.person_id, one).where(*read, e.c.node_id.in_(ahead))
        return sa.union_all(counted, each).subquery()

    def purchases(self, node: PurchaseNode, scope: Scope) -> sa.Select[Any]:
        c, o = node.purchase, schema.orders
        where = [o.c.person_id.is_not(None), sa.not_(o.c.is_return), o.c.ordered_at <= self.at()]
        grouped = c.min_amount is not None or c.min_count > 1 or not self.fast
        if scope is not None:
            where.append(o.c.person_id.in_(sa.select(scope.c.person_id)))
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
        if not grouped:
            return query  # one order is enough: a semi-join, no grouping
        if c.min_amount is not None:
            having.append(amount >= c.min_amount)
        return query.group_by(o.c.person_id).having(*having)

    def consent(self, purpose: str, channel: str, scope: Scope) -> sa.Select[Any]:
        """Persons whose consent in force at ``now`` grants purpose on channel (the rule of
        :mod:`surmesure.protect.consent`)."""
        within = None if scope is None else sa.select(scope.c.person_id)
        return consent.granted_people(purpose, channel, self.at(), within)

    def near(self, node: NearNode, scope: Scope) -> sa.Select[Any]:
        c = node.near
        s = schema.stores.alias("home_store")
        if c.store is not None:
            target = schema.stores.alias("target_store")
            lat: Any = sa.select(target.c.latitude).where(target.c.store_id == c.store)
            lon: Any = sa.select(target.c.longitude).where(target.c.store_id == c.store)
            lat, lon = lat.scalar_subquery(), lon.scalar_subquery()
        else:
            lat, lon = sa.literal(c.lat, sa.Float(precision=53)), sa.literal(c.lon)
        close = sa.select(s.c.store_id).where(
            s.c.latitude.is_not(None),
            s.c.longitude.is_not(None),
            haversine_km(s.c.latitude, s.c.longitude, lat, lon) <= c.radius_km,
        )
        at_close = self.json.as_kind(schema.traits.c.value, "string").in_(close)
        home = self.trait(HOME_STORE_TRAIT, scope, at_close)
        return sa.select(home.c.person_id).where(
            home.c.rn == 1, self.json.as_kind(home.c.value, "string").in_(close)
        )


NOW = "segment_now"
"""The name of ``now`` in a statement compiled with ``named_times``."""
_SINCE = "segment_since_"


def since_name(within_days: int) -> str:
    """The name of ``now - within_days`` in a statement compiled with ``named_times``."""
    return f"{_SINCE}{within_days}"


def time_names(statement: sa.ClauseElement) -> tuple[str, ...]:
    """The named time parameters of ``statement`` (compiled with ``named_times``)."""
    found = {
        key
        for element in visitors.iterate(statement)
        if isinstance(element, sa.BindParameter)
        and isinstance(key := element.key, str)
        and (key == NOW or key.startswith(_SINCE))
    }
    return tuple(sorted(found))


def times(names: tuple[str, ...], now: datetime) -> dict[str, datetime]:
    """The values at ``now`` of the named time parameters ``names`` (:func:`time_names`), to
    execute their statement with: ``conn.execute(statement, times(names, now))``."""
    return {
        key: now if key == NOW else now - timedelta(days=int(key.removeprefix(_SINCE)))
        for key in names
    }


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
    index_key: bytes,
    fast: bool = True,
    among: sa.Select[Any] | None = None,
    named_times: bool = False,
    counted: bool = False,
) -> sa.Select[Any]:
    """``SELECT person_id`` of the current persons (``merged_into IS NULL``) in the segment
    (``fast=False``: the plain plan, same members); with ``among`` (a ``SELECT person_id``),
    of those persons only, every condition looking at their rows alone (real-time updates).
    ``index_key`` is the store's blind-index key (:func:`surmesure.protect.blind.index_key`).
    ``named_times`` and ``counted``: see :class:`Compiler`."""
    compiler = Compiler(
        dialect,
        now,
        half_life_days,
        closure(definition, catalog),
        index_key,
        fast,
        named_times,
        counted,
    )
    people = schema.people
    current = sa.select(people.c.person_id).where(people.c.merged_into.is_(None))
    items = sorted(conjuncts(definition.where, compiler.catalog), key=cost)
    if not fast:
        items = [definition.where]
    if among is not None:
        scope = current.where(people.c.person_id.in_(among))
        for item in items:
            scope = compiler.step(item, scope.cte().prefix_with("MATERIALIZED"))
        return scope
    if len(items) == 1:
        return current.where(compiler.condition(items[0], people.c.person_id))
    scope = current.where(compiler.condition(items[0], people.c.person_id))
    for item in items[1:]:
        scope = compiler.step(item, scope.cte().prefix_with("MATERIALIZED"))
    return scope


def conjuncts(node: Condition, catalog: Catalog) -> list[Condition]:
    """The conditions a person must all meet: nested ``all`` and references to an ``all``
    flattened."""
    match node:
        case AllNode(all=items):
            return [leaf for item in items for leaf in conjuncts(item, catalog)]
        case SegmentNode(segment=name) if isinstance(catalog[name].where, AllNode):
            return conjuncts(catalog[name].where, catalog)
    return [node]


_COST: dict[type, int] = {
    PurchaseNode: 1,
    ConsentNode: 2,
    EventNode: 3,
    MetricNode: 4,
    TraitNode: 5,
    NearNode: 6,
}


def cost(node: Condition) -> int:
    """Order of evaluation in a chain: selective scans first, rankings and nesting last
    (a bucket, a plain expression, goes with the first step)."""
    if isinstance(node, BucketNode):
        return 0
    return _COST.get(type(node), 7)
