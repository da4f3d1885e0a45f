"""What the journey engine needs to know of people beyond their state, read for a whole batch
at once: which branch conditions hold (the segment language compiled to SQL, restricted to the
batch's people), whether their product is out of stock, their time zone."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import get_settings
from surmesure.deliver.plan import zones_of
from surmesure.domain.segments import SegmentDefinition
from surmesure.journeys import engine
from surmesure.journeys.document import (
    BranchStep,
    JourneyDefinition,
    WaitStep,
)
from surmesure.journeys.engine import Facts, State
from surmesure.segment.repository import catalog as segment_catalog
from surmesure.segment.sql import members_query
from surmesure.store import schema
from surmesure.store.engine import Store


def _among(ids: Sequence[int]) -> sa.Select[Any]:
    from sqlalchemy.dialects.postgresql import ARRAY

    array = ARRAY(sa.BigInteger())
    bound = sa.cast(sa.bindparam(None, [int(i) for i in ids], type_=array), array)
    return sa.select(sa.func.unnest(bound))


def facts_for(
    store: Store,
    conn: Connection,
    people: Sequence[tuple[JourneyDefinition, State]],
    now: datetime,
) -> dict[tuple[str, int], Facts]:
    """What the engine needs of each ``(journey, person)`` of the batch, read set-based: which
    branch conditions hold, whether their product is out of stock, their time zone."""
    if not people:
        return {}
    ids_of: dict[str, set[int]] = defaultdict(set)
    journeys: dict[str, JourneyDefinition] = {}
    for d, s in people:
        ids_of[d.name].add(s.person_id)
        journeys[d.name] = d
    holds: dict[tuple[str, str], set[int]] = {}
    segments = None
    settings = get_settings()
    for name, d in journeys.items():
        for step in d.steps:
            if not isinstance(step, BranchStep):
                continue
            if segments is None:
                segments = segment_catalog(conn)
            condition = SegmentDefinition(name="journey_branch", where=step.branch.if_)
            query = members_query(
                condition,
                dialect=store.dialect,
                now=now,
                half_life_days=settings.trait_half_life_days,
                catalog=segments,
                among=_among(sorted(ids_of[name])),
            )
            holds[(name, step.id)] = set(conn.execute(query).scalars().all())
    products = {s.product for _, s in people if s.product is not None}
    out: set[str] = set()
    if products:
        st = schema.stock
        out = {
            str(r[0])
            for r in conn.execute(
                sa.select(st.c.product_code)
                .where(st.c.product_code.in_(sorted(products)))
                .group_by(st.c.product_code)
                .having(sa.func.sum(st.c.quantity) <= 0)
            )
        }
    zones: dict[int, str] = {}
    if any(
        isinstance(step, WaitStep) and step.wait.until
        for d in journeys.values()
        for step in d.steps
    ):
        everyone = np.asarray(sorted({s.person_id for _, s in people}), dtype=np.int64)
        zones = zones_of(conn, everyone)
    facts: dict[tuple[str, int], Facts] = {}
    if not holds and not out and not zones:
        return {(d.name, s.person_id): engine.NO_FACTS for d, s in people}
    held_by: dict[tuple[str, int], set[str]] = defaultdict(set)
    for (name, step_id), ids in holds.items():
        for person in ids:
            held_by[(name, person)].add(step_id)
    shared: dict[frozenset[str], frozenset[str]] = {}
    for d, s in people:
        key = (d.name, s.person_id)
        found = frozenset(held_by.get(key, ()))
        conditions = shared.setdefault(found, found)
        stock_out = s.product in out
        zone = zones.get(s.person_id)
        if not conditions and not stock_out and zone is None:
            facts[key] = engine.NO_FACTS
        else:
            facts[key] = Facts(conditions=conditions, out_of_stock=stock_out, zone=zone)
    return facts
