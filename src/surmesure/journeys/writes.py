"""Writing what the engine decided for a batch of people, in the caller's transaction: new and
changed states, the log, traits updated, the deliver outbox rows of the sends (:mod:`.sends`,
which says why a send leaves once) and of the webhook calls (:mod:`.webhooks`).

The engine's decisions come as groups of people who took the same path (:mod:`.columnar`): the
rows of a group are its members' columns beside the group's step, status, due time and log, so
a batch is written in a few statements whatever its size, with no Python loop over people but
for the keys of the rows that need one (message ids, trait records).
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
from sqlalchemy.engine import Connection

from surmesure.journeys import engine, webhooks
from surmesure.journeys.columnar import Group
from surmesure.journeys.columns import People
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.sends import plan_sends
from surmesure.journeys.steps import SendStep
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.update import as_arrow, update_rows

Columns = dict[str, np.ndarray]


@dataclass
class Stepped:
    """People of one journey version and what the engine made of them, with why they moved
    (``entered``, ``timer``, ...; one cause for all, or one per group)."""

    journey: JourneyDefinition
    version: int
    people: People
    groups: Sequence[Group]
    cause: str | Sequence[str]
    entered: bool = False
    """They entered the journey now (new rows) rather than moved on (changed rows)."""


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
    webhooks: list[str] = field(default_factory=list)
    """The outbox ids of the webhook calls planned (:func:`.webhooks.deliver` makes them once
    the transaction has committed)."""

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


@dataclass
class _Rows:
    new: list[Columns] = field(default_factory=list)
    changed: list[Columns] = field(default_factory=list)
    log: list[Columns] = field(default_factory=list)
    traits: list[Columns] = field(default_factory=list)
    sends: dict[tuple[int, str], list[tuple[np.ndarray, ...]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    hooks: dict[tuple[int, str], list[tuple[np.ndarray, ...]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    journeys: dict[int, tuple[JourneyDefinition, int]] = field(default_factory=dict)


def apply(store: Store, conn: Connection, batches: Sequence[Stepped], now: datetime) -> Applied:
    """Write what ``batches`` did, in the caller's transaction (see the module)."""
    result = Applied()
    rows = _Rows()
    for batch in batches:
        _collect(batch, now, rows, result)
    p, log, t = schema.journey_people, schema.journey_log, schema.traits
    if rows.new:
        store.bulk_insert(conn, p, as_arrow(p, _concat(rows.new)))
    if rows.changed:
        update_rows(conn, p, as_arrow(p, _concat(rows.changed)))
    if rows.traits:
        store.bulk_insert(conn, t, as_arrow(t, _concat(rows.traits)))
    if rows.log:
        store.bulk_insert(conn, log, as_arrow(log, _concat(rows.log)), on_conflict="error")
    for (key, step_id), parts in rows.sends.items():
        definition, version = rows.journeys[key]
        step = definition.step(step_id)
        assert isinstance(step, SendStep)
        ids, entries, held = (np.concatenate(column) for column in zip(*parts, strict=True))
        result.messages += plan_sends(
            store, conn, definition, version, step, (ids, entries, held), now
        )
    for (key, step_id), parts in rows.hooks.items():
        definition, version = rows.journeys[key]
        ids, entries = (np.concatenate(column) for column in zip(*parts, strict=True))
        result.webhooks += webhooks.plan(
            store, conn, definition, version, step_id, (ids, entries), now
        )
    return result


def _collect(batch: Stepped, now: datetime, rows: _Rows, result: Applied) -> None:
    """The rows of one batch's moves (see the module)."""
    causes = [batch.cause] * len(batch.groups) if isinstance(batch.cause, str) else batch.cause
    moved = [(g, why) for g, why in zip(batch.groups, causes, strict=True) if g.changed]
    if not moved:
        return
    d, version, people = batch.journey, batch.version, batch.people
    rows.journeys[id(d)] = (d, version)
    index = np.concatenate([g.index for g, _ in moved])
    sizes = np.asarray([g.index.size for g, _ in moved])
    models = [g.outcome.state for g, _ in moved]

    def each(values: list[Any]) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=object), sizes)

    n = int(index.size)
    states: Columns = {
        "journey": np.full(n, d.name, dtype=object),
        "person_id": people.person_id[index],
        "entry": people.entry[index],
        "version": np.full(n, version),
        "step": each([m.step for m in models]),
        "status": each([m.status for m in models]),
        "due_at": each([m.due_at for m in models]),
        "product": people.product[index],
        "held": np.repeat(np.asarray([m.held for m in models], dtype=bool), sizes),
        "reason": each([m.reason for m in models]),
        "updated_at": np.full(n, now, dtype=object),
    }
    if batch.entered:
        states["entered_at"] = people.entered_at[index]
        rows.new.append(states)
        result.entered += n
    else:
        rows.changed.append(states)
    for group, cause in moved:
        _collect_group(d, version, people, group, cause, now, rows, result)


def _collect_group(
    d: JourneyDefinition,
    version: int,
    people: People,
    group: Group,
    cause: str,
    now: datetime,
    rows: _Rows,
    result: Applied,
) -> None:
    out, size = group.outcome, int(group.index.size)
    ids, entries = people.person_id[group.index], people.entry[group.index]
    result.transitions += len(out.visited) * size
    steps: list[str] = []
    whats: list[str] = []
    if out.visited:
        steps += out.visited
        whats += [cause[:80]] + ["next"] * (len(out.visited) - 1)
    if out.state.status == "done":
        steps.append(out.state.step)
        whats.append(f"ended: {out.state.reason}"[:80])
        reason = str(out.state.reason)
        result.ended[reason] = result.ended.get(reason, 0) + size
    for action in out.actions:
        match action:
            case engine.Send(step=step_id, held=held):
                rows.sends[(id(d), step_id)].append((ids, entries, np.full(size, held)))
            case engine.CallWebhook(step=step_id):
                rows.hooks[(id(d), step_id)].append((ids, entries))
            case engine.UpdateTrait(step=step_id, trait=trait, value=value):
                rows.traits.append(_trait_rows(d.name, step_id, trait, value, ids, entries, now))
            case engine.Assigned(step=step_id, path=path, control=control):
                steps.append(step_id)
                whats.append(f"path {path}" + (" (control)" if control else ""))
    if steps:
        width = len(steps)
        rows.log.append(
            {
                "journey": np.full(size * width, d.name, dtype=object),
                "person_id": np.repeat(ids, width),
                "entry": np.repeat(entries, width),
                "version": np.full(size * width, version),
                "step": np.tile(np.asarray(steps, dtype=object), size),
                "what": np.tile(np.asarray(whats, dtype=object), size),
                "logged_at": np.full(size * width, now, dtype=object),
            }
        )


def _trait_rows(
    journey: str,
    step: str,
    trait: str,
    value: object,
    ids: np.ndarray,
    entries: np.ndarray,
    now: datetime,
) -> Columns:
    n = int(ids.size)
    keys = [
        hashlib.blake2b(f"journey:{journey}:{p}:{e}:{step}".encode(), digest_size=16).hexdigest()
        for p, e in zip(ids.tolist(), entries.tolist(), strict=True)
    ]
    return {
        "record_key": np.asarray(keys, dtype=object),
        "name": np.full(n, trait, dtype=object),
        "person_id": ids,
        "value": np.full(n, orjson.dumps(value).decode(), dtype=object),
        "source": np.full(n, "journey", dtype=object),
        "observed_at": np.full(n, now, dtype=object),
        "reliability": np.ones(n),
    }


def _concat(chunks: list[Columns]) -> Columns:
    if len(chunks) == 1:
        return chunks[0]
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
