"""Moving people through journeys in the store: entries, due timers and signals, in batches.

Each batch is one transaction: the rows are read (on PostgreSQL locked, ``FOR UPDATE SKIP
LOCKED`` for the timers, so several workers share the work and never step the same person
twice; on DuckDB fetched as columns), what the engine needs of the people is read for the whole
batch (:mod:`.facts`), the people alike go through the pure step function a group at a time
(:mod:`.columnar`; one by one with ``per_person``, the reference), and the new states, the log,
the messages the steps send and the webhook calls are written before the commit
(:mod:`.writes`, which says why a send leaves once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.journeys import engine
from surmesure.journeys.columnar import Group, advance
from surmesure.journeys.columns import BatchFacts, People
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.engine import Outcome, Signal
from surmesure.journeys.entries import ReEntry
from surmesure.journeys.facts import batch_facts
from surmesure.journeys.published import Versions
from surmesure.journeys.writes import Applied, Stepped, apply
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.store.engine import Store

BATCH = 20_000
"""Most people stepped in one transaction."""

_STATE = ("person_id", "entry", "step", "status", "entered_at", "due_at", "product", "held")


def _state_columns(p: sa.Table) -> list[sa.Column[Any]]:
    """The columns a state is read from: ``journey``, ``version``, then those of
    :meth:`.columnar.People.from_rows`."""
    return [p.c.journey, p.c.version, *(p.c[name] for name in _STATE)]


def _read(store: Store, conn: Connection, query: sa.Select[Any]) -> list[Sequence[Any]]:
    """The columns of ``query`` (of :func:`_state_columns`), fetched as NumPy arrays on
    DuckDB (times as ``datetime``, NULL as ``None``), from rows elsewhere."""
    if not store.is_duckdb:
        rows = conn.execute(query).all()
        return list(zip(*rows, strict=True)) if rows else []
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = [compiled.params[name] for name in compiled.positiontup or ()]
    got = store.raw_duckdb(conn).execute(str(compiled), params).fetchnumpy()
    columns: list[Sequence[Any]] = []
    for values in got.values():
        if np.ma.isMaskedArray(values):
            plain = np.asarray(values.data, dtype=object)
            plain[np.ma.getmaskarray(values)] = None
            values = plain
        elif values.dtype.kind == "M":
            values = values.astype("datetime64[us]").astype(object)
        columns.append(values)
    return columns if len(columns[0]) else []


def _by_version(columns: Sequence[Sequence[Any]]) -> list[tuple[tuple[str, int], People]]:
    """Columns of :func:`_state_columns` as people, by journey version."""
    if not columns:
        return []
    journeys, versions = columns[0], columns[1]
    everyone = People.from_columns(columns[2:])
    pairs = sorted({(str(j), int(v)) for j, v in zip(journeys, versions, strict=True)})
    if len(pairs) == 1:
        return [(pairs[0], everyone)]
    names = np.asarray(journeys, dtype=object)
    numbers = np.asarray(versions)
    return [
        (pair, everyone.take(np.flatnonzero((names == pair[0]) & (numbers == pair[1]))))
        for pair in pairs
    ]


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
    *,
    per_person: bool = False,
) -> Applied:
    """Admit ``candidates`` (:func:`admit`) and run them through the first steps."""
    admitted = admit(conn, definition, candidates, now)
    if not admitted:
        return Applied()
    ids, entries, products = zip(*admitted, strict=True)
    people = People.entering(
        definition,
        np.asarray(ids, dtype=np.int64),
        np.asarray(entries, dtype=np.int64),
        np.asarray(products, dtype=object),
        now,
    )
    facts = batch_facts(store, conn, definition, people, now, ahead_only=True)
    groups = advance(definition, people, facts, now, None, one_by_one=per_person)
    return apply(store, conn, [Stepped(definition, version, people, groups, "entered", True)], now)


# -- timers and signals -----------------------------------------------------------------------


def tick(
    store: Store, now: datetime, versions: Versions, limit: int = BATCH, *, per_person: bool = False
) -> Applied:
    """Step one batch of people whose pause has ended (active journeys), in one transaction:
    people alike in a group at a time (:mod:`.columnar`), or one by one (``per_person``, the
    reference)."""
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
        columns = _read(store, conn, query)
        batches = []
        for (name, version), people in _by_version(columns):
            definition = versions.get(conn, name, version)
            facts = batch_facts(store, conn, definition, people, now, ahead_only=True)
            groups = advance(definition, people, facts, now, engine.Tick(), one_by_one=per_person)
            batches.append(Stepped(definition, version, people, groups, "timer"))
        result = apply(store, conn, batches, now)
        result.stepped = len(columns[0]) if columns else 0
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
    batches = []
    for (name, version), people in _by_version(_read(store, conn, query)):
        d = versions.get(conn, name, version)
        facts = batch_facts(store, conn, d, people, now)
        ids = people.person_id.tolist()
        each = _one_each if all(len(by_person[i]) == 1 for i in ids) else _in_turn
        groups, causes = each(d, people, facts, now, by_person, name in paused)
        batches.append(Stepped(d, version, people, groups, causes))
    return apply(store, conn, batches, now)


Signals = dict[int, list[tuple[Signal, str]]]


def _one_each(
    d: JourneyDefinition,
    people: People,
    facts: BatchFacts,
    now: datetime,
    signals: Signals,
    paused: bool,
) -> tuple[list[Group], list[str]]:
    """One signal a person: the people given the same signal (and cause) stepped in groups
    (:func:`.columnar.advance`)."""
    alike: dict[tuple[str, str], tuple[Signal, list[int]]] = {}
    for i, person in enumerate(people.person_id.tolist()):
        sig, cause = signals[person][0]
        alike.setdefault((repr(sig), cause), (sig, []))[1].append(i)
    groups: list[Group] = []
    causes: list[str] = []
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
    people: People,
    facts: BatchFacts,
    now: datetime,
    signals: Signals,
    paused: bool,
) -> tuple[list[Group], list[str]]:
    """Several signals a person: each person's, in order, through the engine."""
    groups: list[Group] = []
    causes: list[str] = []
    for i in range(len(people)):
        before = state = people.state(i)
        actions: list[engine.Action] = []
        visited: list[str] = []
        moved: list[str] = []
        for sig, cause in signals[before.person_id]:
            if paused and not _ends(d, sig):
                continue
            out = engine.step(d, state, sig, now, facts.at(i))
            if out.state != state:
                moved.append(cause)
            state = out.state
            actions += out.actions
            visited += out.visited
        outcome = Outcome(state, tuple(actions), tuple(visited))
        groups.append(Group(np.asarray([i]), outcome, state != before))
        causes.append(", ".join(moved)[:80] or "signal")
    return groups, causes


def _ends(definition: JourneyDefinition, sig: Signal) -> bool:
    """Whether ``sig`` ends the journey whatever the step (goal, exit event, withdrawal)."""
    if isinstance(sig, engine.ConsentWithdrawn):
        return True
    if isinstance(sig, engine.Event):
        goal = definition.goal is not None and definition.goal.event == sig.name
        return goal or any(rule.event == sig.name for rule in definition.exit_on)
    return False
