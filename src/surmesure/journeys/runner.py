"""Moving people through journeys in the store: entries, due timers and signals, in batches.

Each batch is one transaction: the rows are read (on PostgreSQL locked, ``FOR UPDATE SKIP
LOCKED`` for the timers, so several workers share the work and never step the same person
twice), each person goes through the pure step function (:mod:`.engine`), and the new states,
the log and the messages the steps send are written before the commit. A send is a row of the
deliver outbox (``messages``, campaign ``j_<journey>_<step>``, step = the entry number), whose
id is a keyed hash of that key: a batch replayed after a crash writes the same rows again and
conflicts on them, so a person is never sent a step twice, and the deliver worker sends each row
once (:mod:`surmesure.deliver.outbox`). Everything the engine needs to know about a person
(branch conditions, stock of their product, time zone) is read for the whole batch at once.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import get_settings
from surmesure.deliver.choice import choose
from surmesure.deliver.plan import zones_of
from surmesure.domain.campaigns import CampaignDefinition, Policy
from surmesure.domain.segments import SegmentDefinition
from surmesure.journeys import engine
from surmesure.journeys.document import (
    BranchStep,
    JourneyDefinition,
    ReEntry,
    SendStep,
    WaitStep,
)
from surmesure.journeys.engine import Facts, Outcome, Signal, State
from surmesure.journeys.published import Versions
from surmesure.segment.repository import catalog as segment_catalog
from surmesure.segment.sql import members_query
from surmesure.store import schema
from surmesure.store.among import among_ids
from surmesure.store.engine import Store
from surmesure.store.update import update_rows

BATCH = 20_000
"""Most people stepped in one transaction."""


def campaign_key(journey: str, step: str) -> str:
    """The outbox's campaign of a journey's send step."""
    return f"j_{journey}_{step}"


def journey_message_id(key: bytes, campaign: str, person_id: int, channel: str, entry: int) -> str:
    """The outbox's id of a journey message: keyed BLAKE2b of its idempotency key (the same
    on every run and worker; the person's id cannot be read back from it). ``key``: 32 bytes
    derived from the secret key."""
    text = f"{campaign}:{person_id}:{channel}:{entry}".encode()
    return hashlib.blake2b(text, key=key, digest_size=16).hexdigest()


def campaign_of(definition: JourneyDefinition, step: SendStep) -> CampaignDefinition:
    """A send step as the campaign the deliver worker sends: its channels and their choice."""
    channels = dict(step.send.channels)
    policy = Policy(order=list(channels), choose=step.send.choose) if len(channels) > 1 else None
    return CampaignDefinition(
        name=campaign_key(definition.name, step.id),
        audience="everyone",
        purpose=step.send.purpose,
        channels=channels,
        policy=policy,
    )


@dataclass
class Move:
    """One person's step: the definition and version they are on, the state before (``None``
    for an entry) and what the engine made of it, and why (``entered``, ``timer``, ...)."""

    journey: JourneyDefinition
    version: int
    before: State | None
    outcome: Outcome
    cause: str


@dataclass
class Applied:
    transitions: int = 0
    entered: int = 0
    ended: dict[str, int] = field(default_factory=dict)
    messages: int = 0
    stepped: int = 0
    """People read and stepped (a timer batch)."""
    sent: dict[str, int] = field(default_factory=dict)
    """What the deliver worker did with the planned messages, by outcome."""
    webhooks: list[tuple[str, str, int, dict[str, Any]]] = field(default_factory=list)
    """``(url, journey, retries, payload)`` to call once the transaction has committed."""

    def add(self, other: Applied) -> None:
        self.transitions += other.transitions
        self.entered += other.entered
        self.messages += other.messages
        self.stepped += other.stepped
        for k, n in other.sent.items():
            self.sent[k] = self.sent.get(k, 0) + n
        for k, n in other.ended.items():
            self.ended[k] = self.ended.get(k, 0) + n
        self.webhooks += other.webhooks


# -- reading states ---------------------------------------------------------------------------


_STATE = ("person_id", "entry", "step", "status", "entered_at", "due_at", "product", "held")


def _state_columns(p: sa.Table) -> list[sa.Column[Any]]:
    """The columns a state is read from, in the order of :func:`state_of` after
    ``journey`` and ``version``."""
    return [p.c.journey, p.c.version, *(p.c[name] for name in _STATE)]


def state_of(row: Any) -> State:
    """A running state from a row of :func:`_state_columns` (by position: the fast way)."""
    return State(row[2], row[3], row[4], row[5], row[6], row[7], row[8], bool(row[9]))


# -- facts ------------------------------------------------------------------------------------


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


# -- writing moves ----------------------------------------------------------------------------


def apply(store: Store, conn: Connection, moves: Sequence[Move], now: datetime) -> Applied:
    """Write what ``moves`` did, in the caller's transaction: new and changed states, the log,
    the messages of the sends (see the module)."""
    result = Applied()
    if not moves:
        return result
    log: list[tuple[Any, ...]] = []
    new: list[tuple[Any, ...]] = []
    changed: list[tuple[Any, ...]] = []
    sends: dict[tuple[str, int, str], list[tuple[State, bool]]] = defaultdict(list)
    journeys: dict[tuple[str, int], JourneyDefinition] = {}
    traits: dict[str, list[Any]] = defaultdict(list)
    for move in moves:
        d, state = move.journey, move.outcome.state
        if move.before is not None and state == move.before:
            continue
        journeys[(d.name, move.version)] = d
        # rows as tuples, turned into columns once (in the order of _STATE_ROW)
        row = (
            d.name,
            state.person_id,
            state.entry,
            move.version,
            state.step,
            state.status,
            state.due_at,
            state.product,
            state.held,
            state.reason,
            now,
        )
        if move.before is None:
            new.append((*row, state.entered_at))
            result.entered += 1
        else:
            changed.append(row)
        visited = move.outcome.visited
        head = (d.name, state.person_id, state.entry, move.version)
        if visited:
            log.append((*head, visited[0], move.cause[:80], now))
            log.extend((*head, step_id, "next", now) for step_id in visited[1:])
        if state.status == "done":
            log.append((*head, state.step, f"ended: {state.reason}"[:80], now))
            result.ended[str(state.reason)] = result.ended.get(str(state.reason), 0) + 1
        result.transitions += len(move.outcome.visited)
        for action in move.outcome.actions:
            match action:
                case engine.Send(step=step_id, held=held):
                    sends[(d.name, move.version, step_id)].append((state, held))
                case engine.CallWebhook(step=step_id, url=url, retries=retries):
                    payload = {
                        "journey": d.name,
                        "step": step_id,
                        "person_id": state.person_id,
                        "entry": state.entry,
                    }
                    result.webhooks.append((url, d.name, retries, payload))
                case engine.UpdateTrait(step=step_id, trait=trait, value=value):
                    key = f"journey:{d.name}:{state.person_id}:{state.entry}:{step_id}"
                    traits["record_key"].append(
                        hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
                    )
                    traits["name"].append(trait)
                    traits["person_id"].append(state.person_id)
                    traits["value"].append(orjson.dumps(value).decode())
                    traits["source"].append("journey")
                    traits["observed_at"].append(now)
                    traits["reliability"].append(1.0)
                case engine.Assigned(step=step_id, path=path, control=control):
                    what = f"path {path}" + (" (control)" if control else "")
                    log.append(
                        (d.name, state.person_id, state.entry, move.version, step_id, what, now)
                    )
    p = schema.journey_people
    if new:
        store.bulk_insert(conn, p, _arrow(p, _columns((*_STATE_ROW, "entered_at"), new)))
    if changed:
        update_rows(conn, p, _arrow(p, _columns(_STATE_ROW, changed)))
    if traits:
        t = schema.traits
        store.bulk_insert(conn, t, _arrow(t, traits))
    if log:
        rows = _columns(_LOG_ROW, log)
        store.bulk_insert(
            conn, schema.journey_log, _arrow(schema.journey_log, rows), on_conflict="error"
        )
    for (name, version, step_id), who in sends.items():
        step = journeys[(name, version)].step(step_id)
        assert isinstance(step, SendStep)
        result.messages += _plan_sends(
            store, conn, journeys[(name, version)], version, step, who, now
        )
    return result


_STATE_ROW = (
    "journey",
    "person_id",
    "entry",
    "version",
    "step",
    "status",
    "due_at",
    "product",
    "held",
    "reason",
    "updated_at",
)
_LOG_ROW = ("journey", "person_id", "entry", "version", "step", "what", "logged_at")


def _columns(names: Sequence[str], rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """Rows of tuples as columns named ``names``."""
    return {name: list(column) for name, column in zip(names, zip(*rows, strict=True), strict=True)}


def _arrow(table: sa.Table, columns: dict[str, list[Any]]) -> pa.Table:
    types = {
        sa.BigInteger: pa.int64(),
        sa.Integer: pa.int32(),
        sa.SmallInteger: pa.int16(),
        sa.DateTime: pa.timestamp("us"),
        sa.Boolean: pa.bool_(),
        sa.Float: pa.float64(),
    }
    arrays = {}
    for name, values in columns.items():
        kind = type(table.c[name].type)
        arrays[name] = pa.array(values, types.get(kind, pa.string()))
    return pa.table(arrays)


def _plan_sends(
    store: Store,
    conn: Connection,
    journey: JourneyDefinition,
    version: int,
    step: SendStep,
    who: list[tuple[State, bool]],
    now: datetime,
) -> int:
    """The outbox rows of one send step for ``who`` (held: ``held_out``); returns how many
    were new."""
    campaign = campaign_of(journey, step)
    order = [str(c) for c in step.send.channels]
    ids = np.asarray([s.person_id for s, _ in who], dtype=np.int64)
    channel = np.full(ids.size, order[0], dtype=object)
    reason = np.full(ids.size, "", dtype=object)
    if len(order) > 1:
        chosen = choose(conn, campaign, ids, order, now, best=step.send.choose == "best")
        channel, reason = chosen.channel, chosen.reason
    rows: dict[str, list[Any]] = defaultdict(list)
    key = hashlib.blake2b(get_settings().secret_key.encode(), digest_size=32).digest()
    for (state, held), ch, why in zip(who, channel.tolist(), reason.tolist(), strict=True):
        status = "held_out" if held else ("suppressed" if why else "planned")
        rows["message_id"].append(
            journey_message_id(key, campaign.name, state.person_id, ch, state.entry)
        )
        rows["campaign"].append(campaign.name)
        rows["version"].append(version)
        rows["person_id"].append(state.person_id)
        rows["channel"].append(ch)
        rows["step"].append(state.entry)
        rows["status"].append(status)
        rows["reason"].append("journey_control" if held else (why or None))
        rows["attempts"].append(0)
        rows["next_attempt_at"].append(now if status == "planned" else None)
        rows["planned_at"].append(now)
        rows["updated_at"].append(now)
    m = schema.messages
    return store.bulk_insert(conn, m, _arrow(m, rows))


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
