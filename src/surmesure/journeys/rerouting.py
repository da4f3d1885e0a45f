"""Signals for people in flight, in the caller's transaction: a purchase, an exit event, a
consent withdrawal, a stock-out, a location, a failed step move each person's running journeys
(:func:`.engine.step`), the people given the same signal a group at a time (:mod:`.columnar`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.journeys import engine
from surmesure.journeys.columnar import Group, advance
from surmesure.journeys.columns import BatchFacts, People
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.engine import Facts, Outcome, Signal, State
from surmesure.journeys.facts import batch_facts
from surmesure.journeys.published import Versions
from surmesure.journeys.runner import by_version, read_people, state_columns
from surmesure.journeys.writes import Applied, Stepped, apply
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.store.engine import Store


def signal(
    store: Store,
    conn: Connection,
    signals: Iterable[tuple[int, Signal, str]],
    now: datetime,
    versions: Versions,
    *,
    journey: str | None = None,
) -> Applied:
    """Apply each ``(person, signal, cause)`` in order to every running journey of the
    person (only ``journey`` when given), in the caller's transaction (rows locked on
    PostgreSQL). A paused journey takes only the signals that end it (its goal, an exit
    event, a consent withdrawal): nobody moves on, but nobody is chased after buying."""
    by_person: dict[int, list[tuple[Signal, str]]] = defaultdict(list)
    for person, sig, cause in signals:
        by_person[person].append((sig, cause))
    if not by_person:
        return Applied()
    p, j = schema.journey_people, schema.journeys
    paused = {str(r[0]) for r in conn.execute(sa.select(j.c.name).where(j.c.status == "paused"))}
    query = sa.select(*state_columns(p)).where(
        p.c.status == "running", among_ids(p.c.person_id, sorted(by_person))
    )
    if journey is not None:
        query = query.where(p.c.journey == journey)
    batches = []
    locked = store.backend.lock_rows(query, of=p)
    for (name, version), people in by_version(read_people(store, conn, locked)):
        d = versions.get(conn, name, version)
        facts = batch_facts(store, conn, d, people, now)
        groups, causes = _moves(d, people, facts, now, by_person, name in paused)
        batches.append(Stepped(d, version, people, groups, causes))
    return apply(store, conn, batches, now)


def _moves(
    d: JourneyDefinition,
    people: People,
    facts: BatchFacts,
    now: datetime,
    signals: dict[int, list[tuple[Signal, str]]],
    paused: bool,
) -> tuple[list[Group], list[str]]:
    """What ``signals`` do to ``people``, with the cause of each group's move. One signal a
    person: the people given the same signal (and cause) are stepped in groups
    (:func:`.columnar.advance`); several: each person's in turn, through the engine."""
    ids = people.person_id.tolist()
    groups: list[Group] = []
    causes: list[str] = []
    if any(len(signals[person]) > 1 for person in ids):
        for i, person in enumerate(ids):
            outcome, changed, cause = _in_turn(
                d, people.state(i), signals[person], now, facts.at(i), paused
            )
            groups.append(Group(np.asarray([i]), outcome, changed))
            causes.append(cause)
        return groups, causes
    alike: dict[tuple[str, str], tuple[Signal, list[int]]] = {}
    for i, person in enumerate(ids):
        sig, cause = signals[person][0]
        alike.setdefault((repr(sig), cause), (sig, []))[1].append(i)
    for (_, cause), (sig, members) in alike.items():
        if paused and not _ends(d, sig):
            continue  # nobody moves on in a paused journey
        index = np.asarray(members)
        for g in advance(d, people.take(index), facts.take(index), now, sig):
            groups.append(Group(index[g.index], g.outcome, g.changed))
            causes.append(cause[:80] if g.changed else "signal")
    return groups, causes


def _in_turn(
    d: JourneyDefinition,
    before: State,
    signals: list[tuple[Signal, str]],
    now: datetime,
    facts: Facts,
    paused: bool,
) -> tuple[Outcome, bool, str]:
    """One person's signals in order: the outcome, whether they moved, and why."""
    state = before
    actions: list[engine.Action] = []
    visited: list[str] = []
    moved: list[str] = []
    for sig, cause in signals:
        if paused and not _ends(d, sig):
            continue
        out = engine.step(d, state, sig, now, facts)
        if out.state != state:
            moved.append(cause)
        state = out.state
        actions += out.actions
        visited += out.visited
    outcome = Outcome(state, tuple(actions), tuple(visited))
    return outcome, state != before, ", ".join(moved)[:80] or "signal"


def _ends(definition: JourneyDefinition, sig: Signal) -> bool:
    """Whether ``sig`` ends the journey whatever the step (goal, exit event, withdrawal)."""
    if isinstance(sig, engine.ConsentWithdrawn):
        return True
    if isinstance(sig, engine.Event):
        goal = definition.goal is not None and definition.goal.event == sig.name
        return goal or any(rule.event == sig.name for rule in definition.exit_on)
    return False
