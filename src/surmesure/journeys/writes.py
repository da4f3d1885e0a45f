"""Writing what the engine decided for a batch of people, in the caller's transaction: new and
changed states, the log, traits updated, and the deliver outbox rows of the sends.

A send is a row of ``messages`` (campaign ``j_<journey>_<step>``, step = the entry number),
whose id is a keyed hash of that key: a batch replayed after a crash writes the same rows again
and conflicts on them, so a person is never sent a step twice, and the deliver worker sends each
row once (:mod:`surmesure.deliver.outbox`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import get_settings
from surmesure.deliver.choice import choose
from surmesure.domain.campaigns import CampaignDefinition, Policy
from surmesure.journeys import engine
from surmesure.journeys.document import (
    JourneyDefinition,
    SendStep,
)
from surmesure.journeys.engine import Outcome, State
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.update import update_rows


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
