"""The step function for many people at once, as columns.

People of one journey version on the same step, alike in everything the engine reads of them
(held out or not, with a product or not, paused or due, the same facts) and given the same
signal at the same time take the same path: the same steps, the same actions, the same new
step, status, due time and reason. So :func:`advance` sorts a batch into such groups, runs the
pure engine (:mod:`.engine`) once on the first person of each group, and that outcome holds for
every other member, their own id, entry, entry time and product aside. A path through a split
depends on the person (a hash of their id): such a group is stepped person by person.

The engine stays the reference: :func:`outcomes` gives each person's outcome back from the
groups, and a test checks it equals :func:`.engine.step` person by person. Pure: no store, no
clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from surmesure.journeys import engine
from surmesure.journeys.columns import BatchFacts, Column, People
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.engine import Outcome, Signal, State


@dataclass(frozen=True)
class Group:
    """People (positions in the batch) who take the same path, and the outcome of the first
    of them: every other member's is the same but for their own id, entry, entry time and
    product."""

    index: Column
    outcome: Outcome
    changed: bool
    """Whether they moved (if not, each member keeps their own state)."""


def advance(
    definition: JourneyDefinition,
    people: People,
    facts: BatchFacts,
    now: datetime,
    signal: Signal | None,
    *,
    one_by_one: bool = False,
) -> list[Group]:
    """Each person of ``people`` after ``signal`` at ``now`` (``None``: they enter the journey),
    as groups (see the module); ``one_by_one``: the engine run person by person, a group each
    (the reference, and the way to measure what the groups save)."""
    if one_by_one:
        return [_single(definition, people, facts, now, signal, i) for i in range(len(people))]
    groups: list[Group] = []
    for index in _alike(people, facts, now, signal) if len(people) else []:
        first = _single(definition, people, facts, now, signal, int(index[0]))
        if index.size > 1 and any(isinstance(a, engine.Assigned) for a in first.outcome.actions):
            groups += [_single(definition, people, facts, now, signal, k) for k in index.tolist()]
        else:
            groups.append(Group(index, first.outcome, first.changed))
    return groups


def outcomes(people: People, groups: Sequence[Group]) -> list[Outcome]:
    """Each person's outcome, in the order of ``people``, from the groups."""
    out: list[Outcome | None] = [None] * len(people)
    for group in groups:
        model = group.outcome.state
        for i in group.index.tolist():
            own = people.state(i)
            if not group.changed:
                out[i] = Outcome(own)
                continue
            state = State(
                own.person_id,
                own.entry,
                model.step,
                model.status,
                own.entered_at,
                model.due_at,
                own.product,
                model.held,
                model.reason,
            )
            out[i] = Outcome(state, group.outcome.actions, group.outcome.visited)
    assert all(o is not None for o in out)
    return [o for o in out if o is not None]


def _single(
    definition: JourneyDefinition,
    people: People,
    facts: BatchFacts,
    now: datetime,
    signal: Signal | None,
    i: int,
) -> Group:
    """The engine run on person ``i``, as a group of one."""
    state = people.state(i)
    if signal is None:
        facts_i, product = facts.at(i), state.product
        out = engine.enter(definition, state.person_id, state.entry, now, facts_i, product)
        return Group(np.asarray([i]), out, True)
    out = engine.step(definition, state, signal, now, facts.at(i))
    return Group(np.asarray([i]), out, out.state != state)


def _alike(people: People, facts: BatchFacts, now: datetime, signal: Signal | None) -> list[Column]:
    """The positions of people the engine cannot tell apart, a group at a time: the same step
    and status, held out or not, with a product or not (the product itself for a stock
    change), paused until later or not, and the same facts."""
    n = len(people)
    keys = [
        _codes(people.step),
        _codes(people.status),
        people.held.astype(np.int64),
        np.fromiter((p is not None for p in people.product), bool, n).astype(np.int64),
        np.fromiter((d is not None and now < d for d in people.due_at), bool, n).astype(np.int64),
        facts.out_of_stock.astype(np.int64),
        _codes(facts.zone),
    ]
    if isinstance(signal, engine.StockChange):
        ours = signal.product
        keys.append(np.fromiter((p == ours for p in people.product), bool, n).astype(np.int64))
    for step in sorted(facts.conditions):
        keys.append(facts.conditions[step].astype(np.int64))
    radices = [int(column.max()) + 1 for column in keys]
    if math.prod(radices) < 2**62:  # one number per person, mixed radix (a few bits each)
        key = np.zeros(n, dtype=np.int64)
        for column, radix in zip(keys, radices, strict=True):
            key = key * radix + column
    else:  # too many branches for one number: number the distinct rows
        key = np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True)[1].reshape(-1)
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    return np.split(order, bounds)


def _codes(values: Column) -> Column:
    """Small integers for the distinct values of an object array (``None`` included)."""
    seen: dict[object, int] = {}
    return np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.int64, values.size)
