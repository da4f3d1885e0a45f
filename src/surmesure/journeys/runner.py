"""Moving people through journeys in the store: entries, due timers and signals, in batches.

Each batch is one transaction: the rows are read (on PostgreSQL locked, ``FOR UPDATE SKIP
LOCKED`` for the timers, so several workers share the work and never step the same person
twice), what the engine needs of the people is read for the whole batch (:mod:`.facts`), each
person goes through the pure step function (:mod:`.engine`), and the new states, the log and
the messages the steps send are written before the commit (:mod:`.writes`, which says why a
send leaves once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.journeys import engine
from surmesure.journeys.document import JourneyDefinition, ReEntry
from surmesure.journeys.engine import Outcome, Signal, State
from surmesure.journeys.facts import facts_for
from surmesure.journeys.published import Versions
from surmesure.journeys.writes import Applied, Move, apply
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.store.engine import Store

BATCH = 20_000
"""Most people stepped in one transaction."""

_STATE = ("person_id", "entry", "step", "status", "entered_at", "due_at", "product", "held")


def _state_columns(p: sa.Table) -> list[sa.Column[Any]]:
    """The columns a state is read from, in the order of :func:`state_of` after
    ``journey`` and ``version``."""
    return [p.c.journey, p.c.version, *(p.c[name] for name in _STATE)]


def state_of(row: Any) -> State:
    """A running state from a row of :func:`_state_columns` (by position: the fast way)."""
    return State(row[2], row[3], row[4], row[5], row[6], row[7], row[8], bool(row[9]))


# -- entries ----------------------------------------------------------------------------------


def admit(
    conn: Connection,
    definition: JourneyDefinition,
    candidates: dict[int, str | None],
    now: datetime,
) -> list[tuple[int, int, str | None]]:
    """Who of ``candidates`` (person -> product) enters now, with their entry number: the
    re-entry rule (``never``: a person enters once; ``always``: again once the last entry
    ended; ``after_days``: and at least that long after it began) and the daily limit (first
    come, by person id, among those of one batch)."""
    if not candidates:
        return []
    p = schema.journey_people
    ids = sorted(candidates)
    rows = conn.execute(
        sa.select(
            p.c.person_id,
            sa.func.max(p.c.entry).label("last"),
            sa.func.max(p.c.entered_at).label("since"),
            sa.func.sum(sa.case((p.c.status == "running", 1), else_=0)).label("running"),
        )
        .where(p.c.journey == definition.name, among_ids(p.c.person_id, ids))
        .group_by(p.c.person_id)
    )
    before = {int(r.person_id): r for r in rows}
    rule = definition.re_entry
    admitted: list[tuple[int, int, str | None]] = []
    for person in ids:
        r = before.get(person)
        if r is None:
            admitted.append((person, 1, candidates[person]))
            continue
        if rule == "never" or int(r.running or 0) > 0:
            continue
        if isinstance(rule, ReEntry) and r.since > now - timedelta(days=rule.after_days):
            continue
        admitted.append((person, int(r.last) + 1, candidates[person]))
    if definition.limit_per_day is not None and admitted:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        today = conn.execute(
            sa.select(sa.func.count())
            .select_from(p)
            .where(p.c.journey == definition.name, p.c.entered_at >= day)
        ).scalar_one()
        admitted = admitted[: max(definition.limit_per_day - int(today), 0)]
    return admitted


def enter_people(
    store: Store,
    conn: Connection,
    definition: JourneyDefinition,
    version: int,
    candidates: dict[int, str | None],
    now: datetime,
) -> Applied:
    """Admit ``candidates`` (:func:`admit`) and run each through the first steps."""
    admitted = admit(conn, definition, candidates, now)
    starts = [
        State(person, entry, definition.first, "running", now, product=product)
        for person, entry, product in admitted
    ]
    facts = facts_for(store, conn, [(definition, s) for s in starts], now)
    moves = [
        Move(
            definition,
            version,
            None,
            engine.enter(
                definition,
                s.person_id,
                s.entry,
                now,
                facts[(definition.name, s.person_id)],
                s.product,
            ),
            "entered",
        )
        for s in starts
    ]
    return apply(store, conn, moves, now)


# -- timers and signals -----------------------------------------------------------------------


def tick(store: Store, now: datetime, versions: Versions, limit: int = BATCH) -> Applied:
    """Step one batch of people whose pause has ended (active journeys), in one transaction."""
    p, j = schema.journey_people, schema.journeys
    active = sa.select(j.c.name).where(j.c.status.in_(("active", "archived")))
    with store.connect() as conn:
        first = conn.execute(
            sa.select(sa.func.min(p.c.due_at)).where(p.c.status == "running")
        ).scalar_one()
    if first is None or first > now:
        return Applied()  # nothing due: no transaction
    query = (
        sa.select(*_state_columns(p))
        .where(p.c.status == "running", p.c.due_at <= now, p.c.journey.in_(active))
        .order_by(p.c.due_at)
        .limit(limit)
    )
    if not store.is_duckdb:
        query = query.with_for_update(skip_locked=True, of=p)
    with store.begin() as conn:
        rows = conn.execute(query).all()
        people = [(versions.get(conn, r[0], r[1]), r[1], state_of(r)) for r in rows]
        facts = facts_for(store, conn, [(d, s) for d, _, s in people], now)
        moves = [
            Move(
                d,
                v,
                s,
                engine.step(d, s, engine.Tick(), now, facts[(d.name, s.person_id)]),
                "timer",
            )
            for d, v, s in people
        ]
        result = apply(store, conn, moves, now)
        result.stepped = len(rows)
        return result


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
    query = sa.select(*_state_columns(p)).where(
        p.c.status == "running", among_ids(p.c.person_id, sorted(by_person))
    )
    if journey is not None:
        query = query.where(p.c.journey == journey)
    if not store.is_duckdb:
        query = query.with_for_update(of=p)
    rows = conn.execute(query).all()
    people = [(versions.get(conn, r[0], r[1]), r[1], state_of(r)) for r in rows]
    facts = facts_for(store, conn, [(d, s) for d, _, s in people], now)
    moves = []
    for d, v, before in people:
        state = before
        actions: list[engine.Action] = []
        visited: list[str] = []
        causes: list[str] = []
        for sig, cause in by_person[before.person_id]:
            if d.name in paused and not _ends(d, sig):
                continue
            out = engine.step(d, state, sig, now, facts[(d.name, before.person_id)])
            if out.state != state:
                causes.append(cause)
            state = out.state
            actions += out.actions
            visited += out.visited
        moves.append(
            Move(
                d,
                v,
                before,
                Outcome(state, tuple(actions), tuple(visited)),
                ", ".join(causes)[:80] or "signal",
            )
        )
    return apply(store, conn, moves, now)


def _ends(definition: JourneyDefinition, sig: Signal) -> bool:
    """Whether ``sig`` ends the journey whatever the step (goal, exit event, withdrawal)."""
    if isinstance(sig, engine.ConsentWithdrawn):
        return True
    if isinstance(sig, engine.Event):
        goal = definition.goal is not None and definition.goal.event == sig.name
        return goal or any(rule.event == sig.name for rule in definition.exit_on)
    return False
