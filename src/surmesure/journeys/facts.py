"""What the journey engine needs to know of people beyond their state, read for a whole batch
at once: which branch conditions hold (the segment language compiled to SQL, restricted to the
batch's people), whether their product is out of stock, their time zone."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver.plan import zones_of
from surmesure.domain.segments import SegmentDefinition
from surmesure.journeys.columns import BatchFacts, People
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.engine import Facts, State
from surmesure.journeys.graph import ahead
from surmesure.journeys.steps import BranchStep, WaitStep
from surmesure.protect import blind
from surmesure.segment.repository import catalog as segment_catalog
from surmesure.segment.sql import members_query
from surmesure.store import schema
from surmesure.store.engine import Store


def _among(ids: Sequence[int]) -> sa.Select[Any]:
    from sqlalchemy.dialects.postgresql import ARRAY

    array = ARRAY(sa.BigInteger())
    bound = sa.cast(sa.bindparam(None, [int(i) for i in ids], type_=array), array)
    return sa.select(sa.func.unnest(bound))


def batch_facts(
    store: Store,
    conn: Connection,
    definition: JourneyDefinition,
    people: People,
    now: datetime,
    *,
    ahead_only: bool = False,
) -> BatchFacts:
    """What the engine needs of each of ``people`` (on ``definition``), read set-based: which
    branch conditions hold, whether their product is out of stock, their time zone.
    ``ahead_only`` (a timer or an entry, which moves people on from their step, never to
    another step's exit): a branch condition is read only for the people who can reach the
    branch from their step, the time zones only if they can reach a wait until a local time
    (the facts of the others are left empty)."""
    n = len(people)
    facts = BatchFacts.none(n)
    if n == 0:
        return facts
    ids = people.person_id
    reach = {s: ahead(definition.steps, s) for s in set(people.step.tolist())}

    def who(kind: type, wanted: Callable[[Any], bool] = bool) -> dict[str, np.ndarray]:
        """Each step of ``kind`` (and ``wanted``), with the people who may need it."""
        found = {}
        for step in definition.steps:
            if not isinstance(step, kind) or not wanted(step):
                continue
            if not ahead_only:
                found[step.id] = np.ones(n, dtype=bool)
                continue
            starts = [s for s, steps in reach.items() if step.id in steps]
            if starts:
                found[step.id] = np.isin(people.step, starts)
        return found

    segments = None
    settings = store.settings
    for step_id, need in who(BranchStep).items():
        step = definition.step(step_id)
        assert isinstance(step, BranchStep)
        if segments is None:
            segments = segment_catalog(conn)
        condition = SegmentDefinition(name="journey_branch", where=step.branch.if_)
        query = members_query(
            condition,
            dialect=store.dialect,
            now=now,
            half_life_days=settings.trait_half_life_days,
            catalog=segments,
            index_key=blind.index_key(store),
            among=_among(np.unique(ids[need]).tolist()),
        )
        holds = np.asarray(conn.execute(query).scalars().all(), dtype=np.int64)
        facts.conditions[step.id] = np.isin(ids, holds)
    products = {p for p in people.product.tolist() if p is not None}
    if products:
        out = out_of_stock(conn, products)
        if out:
            facts.out_of_stock[:] = [p in out for p in people.product.tolist()]
    until = who(WaitStep, lambda step: step.wait.until is not None)
    if until:
        need = np.logical_or.reduce(list(until.values()))
        zones = zones_of(conn, np.unique(ids[need]))
        if zones:
            facts.zone[:] = [zones.get(p) for p in ids.tolist()]
    return facts


def sold_out() -> sa.Select[tuple[str]]:
    """The products out of stock now: their quantity over every store is 0 or less."""
    st = schema.stock
    return (
        sa.select(st.c.product_code)
        .group_by(st.c.product_code)
        .having(sa.func.sum(st.c.quantity) <= 0)
    )


def out_of_stock(conn: Connection, products: set[str]) -> set[str]:
    """Those of ``products`` out of stock now."""
    if not products:
        return set()
    query = sold_out().where(schema.stock.c.product_code.in_(sorted(products)))
    return {str(r[0]) for r in conn.execute(query)}


def facts_for(
    store: Store,
    conn: Connection,
    people: Sequence[tuple[JourneyDefinition, State]],
    now: datetime,
) -> dict[tuple[str, int], Facts]:
    """:func:`batch_facts` person by person, for people on any journeys."""
    by_journey: dict[int, list[State]] = defaultdict(list)
    definitions: dict[int, JourneyDefinition] = {}
    for d, s in people:
        by_journey[id(d)].append(s)
        definitions[id(d)] = d
    facts: dict[tuple[str, int], Facts] = {}
    for key, states in by_journey.items():
        d = definitions[key]
        found = batch_facts(store, conn, d, People.of(states), now)
        for i, s in enumerate(states):
            facts[(d.name, s.person_id)] = found.at(i)
    return facts
