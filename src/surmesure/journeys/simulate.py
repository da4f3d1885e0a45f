"""A journey run over the store's own history in compressed time: what would have happened.

The window is the last ``days`` days of collected events (or from ``start``). People enter as
the journey's entry says (its event, a segment entry or exit recorded in ``segment_changes``,
a schedule, a date trait), under its re-entry rule and daily limit; then their later events
and orders (``Order Completed``) are replayed as signals, in time order, interleaved with
the timers of their pauses, through the same step function the worker uses (:mod:`.engine`).
Nothing is written: sends are counted, not recorded. Branch conditions and stock are read once,
at the start of the window, for everyone who enters (the store has no past states of them).

The result is the funnel: people who entered, went through each step, sends per step, how the
journey ended for each (by reason), and the transitions per second of the replay.
"""

from __future__ import annotations

import heapq
import time as clock
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import InvalidInput
from surmesure.journeys import engine
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.engine import Facts, Outcome, State
from surmesure.journeys.entries import (
    DateEntryNode,
    EventEntryNode,
    ReEntry,
    ScheduleEntryNode,
    SegmentEntryNode,
)
from surmesure.journeys.facts import facts_for
from surmesure.journeys.steps import WaitForEventStep
from surmesure.journeys.worker import dated_people
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json

ORDER = "Order Completed"


@dataclass
class Funnel:
    journey: str
    start: datetime
    end: datetime
    entered: int = 0
    people: int = 0
    through: Counter[str] = field(default_factory=Counter)
    sends: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    ended: Counter[str] = field(default_factory=Counter)
    running: int = 0
    transitions: int = 0
    signals: int = 0
    seconds: float = 0.0

    def document(self, order: list[str]) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "start": self.start,
            "end": self.end,
            "entered": self.entered,
            "people": self.people,
            "steps": [
                {
                    "step": s,
                    "through": self.through.get(s, 0),
                    "sends": self.sends.get(s, 0),
                    "held_out": self.held.get(s, 0),
                }
                for s in order
            ],
            "ended": dict(sorted(self.ended.items())),
            "running": self.running,
            "goals": self.ended.get("goal", 0),
            "conversion": self.ended.get("goal", 0) / self.entered if self.entered else None,
            "transitions": self.transitions,
            "signals": self.signals,
            "seconds": round(self.seconds, 3),
            "transitions_per_second": round(self.transitions / self.seconds)
            if self.seconds
            else None,
        }


def _names(definition: JourneyDefinition) -> set[str]:
    names = {definition.goal.event} if definition.goal else set()
    names |= {r.event for r in definition.exit_on}
    names |= {s.wait_for_event.event for s in definition.steps if isinstance(s, WaitForEventStep)}
    if isinstance(definition.entry, EventEntryNode):
        names.add(definition.entry.event.name)
    return names


def _history(
    conn: Connection, definition: JourneyDefinition, start: datetime, end: datetime
) -> list[tuple[datetime, int, str, dict[str, Any]]]:
    """``(at, person, event, properties)`` in the window, in time order: the tracked events the
    journey names and the orders."""
    e, o = schema.events, schema.orders
    rows: list[tuple[datetime, int, str, dict[str, Any]]] = []
    names = sorted(_names(definition))
    for r in conn.execute(
        sa.select(e.c.occurred_at, e.c.person_id, e.c.event, e.c.properties).where(
            e.c.type == "track",
            e.c.person_id.is_not(None),
            e.c.event.in_(names),
            e.c.occurred_at >= start,
            e.c.occurred_at < end,
        )
    ):
        properties = decode_json(r.properties) if r.properties is not None else {}
        plain = {
            k: v
            for k, v in (properties if isinstance(properties, dict) else {}).items()
            if isinstance(v, str | int | float | bool)
        }
        rows.append((r.occurred_at, int(r.person_id), str(r.event), plain))
    if ORDER in names:
        for o_row in conn.execute(
            sa.select(o.c.ordered_at, o.c.person_id).where(
                o.c.person_id.is_not(None),
                ~o.c.is_return,
                o.c.ordered_at >= start,
                o.c.ordered_at < end,
            )
        ):
            rows.append((o_row.ordered_at, int(o_row.person_id), ORDER, {}))
    rows.sort(key=lambda x: (x[0], x[1]))
    return rows


def _entries(
    conn: Connection,
    definition: JourneyDefinition,
    history: list[tuple[datetime, int, str, dict[str, Any]]],
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, int, str | None]]:
    """``(at, person, product)`` of each time someone qualifies for entry, in time order."""
    entry = definition.entry
    if isinstance(entry, EventEntryNode):
        spec = entry.event
        return [
            (at, person, None if p.get("product_id") is None else str(p.get("product_id")))
            for at, person, name, p in history
            if name == spec.name and all(p.get(k) == v for k, v in spec.where.items())
        ]
    if isinstance(entry, SegmentEntryNode):
        c = schema.segment_changes
        change = "entered" if entry.segment.on == "enter" else "exited"
        rows = conn.execute(
            sa.select(c.c.changed_at, c.c.person_id)
            .where(
                c.c.segment == entry.segment.name,
                c.c.change == change,
                c.c.changed_at >= start,
                c.c.changed_at < end,
            )
            .order_by(c.c.changed_at, c.c.person_id)
        )
        return [(r[0], int(r[1]), None) for r in rows]
    if isinstance(entry, ScheduleEntryNode):
        p = schema.people
        everyone = [
            int(r[0])
            for r in conn.execute(sa.select(p.c.person_id).where(p.c.merged_into.is_(None)))
        ]
        out: list[tuple[datetime, int, str | None]] = []
        at = start
        while at < end:
            out += [(at, person, None) for person in everyone]
            at += timedelta(days=entry.schedule.every_days)
        return out
    if isinstance(entry, DateEntryNode):
        dates: list[tuple[datetime, int, str | None]] = []
        day: date = start.date()
        while datetime.combine(day, datetime.min.time()) < end:
            at = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
            dates += [(at, person, None) for person in sorted(dated_people(conn, entry, day))]
            day += timedelta(days=1)
        return dates
    raise InvalidInput(
        "A journey entered by location cannot be simulated: the store keeps no past locations.",
        field="entry",
        hint="simulate a journey entered by an event, a segment, a schedule or a date",
    )


def window(store: Store, days: int, start: datetime | None) -> tuple[datetime, datetime]:
    """The simulated window: ``days`` from ``start``, else the last ``days`` of events."""
    if start is None:
        e = schema.events
        with store.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(e.c.occurred_at))).scalar_one()
        if last is None:
            raise InvalidInput(
                "There are no events to replay.",
                field="--days",
                hint="collect or import events first (`surmesure demo` makes a demo world)",
            )
        start = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        start -= timedelta(days=days)
    return start, start + timedelta(days=days)


def simulate(
    store: Store, definition: JourneyDefinition, days: int, *, start: datetime | None = None
) -> Funnel:
    """Replay the window through ``definition`` (see the module)."""
    start, end = window(store, days, start)
    funnel = Funnel(definition.name, start, end)
    with store.connect() as conn:
        history = _history(conn, definition, start, end)
        entries = _entries(conn, definition, history, start, end)
        people = sorted({person for _, person, _ in entries})
        probe = [(definition, State(p, 1, definition.first, "running", start)) for p in people]
        facts = facts_for(store, conn, probe, start)
        products = {str(x) for _, _, x in entries if x is not None}
        out = _out_of_stock(conn, products)
    funnel.people = len(people)
    began = clock.perf_counter()
    states: dict[int, State] = {}
    last_entry: dict[int, tuple[int, datetime]] = {}
    per_day: Counter[date] = Counter()
    timers: list[tuple[datetime, int, int]] = []  # (due, person, entry)
    signals: list[tuple[datetime, int, int, Any]] = []  # (at, order, kind, payload)
    for i, (at, person, product) in enumerate(entries):
        signals.append((at, 2 * i, 0, (person, product)))
    for i, (at, person, name, properties) in enumerate(history):
        signals.append((at, 2 * i + 1, 1, (person, engine.Event(name, properties))))
    signals.sort(key=lambda x: (x[0], x[2] == 0, x[1]))  # at one time: signals, then entries

    def fact(person: int, state: State) -> Facts:
        base = facts.get((definition.name, person), engine.NO_FACTS)
        return Facts(base.conditions, state.product in out, base.zone)

    def take(out_: Outcome) -> None:
        state = out_.state
        states[state.person_id] = state
        funnel.transitions += out_.transitions
        funnel.through.update(out_.visited)
        for action in out_.actions:
            if isinstance(action, engine.Send):
                (funnel.held if action.held else funnel.sends)[action.step] += 1
        if state.status == "done":
            funnel.ended[str(state.reason)] += 1
        elif state.due_at is not None:
            heapq.heappush(timers, (state.due_at, state.person_id, state.entry))

    def run_timers(until: datetime) -> None:
        while timers and timers[0][0] <= until:
            due, person, entry = heapq.heappop(timers)
            state = states.get(person)
            if state is None or state.entry != entry or state.due_at != due:
                continue  # moved on since by a signal
            take(engine.step(definition, state, engine.Tick(), due, fact(person, state)))

    for at, _, kind, payload in signals:
        run_timers(at)
        if kind == 1:
            person, event = payload
            state = states.get(person)
            if state is not None and state.status == "running":
                funnel.signals += 1
                take(engine.step(definition, state, event, at, fact(person, state)))
            continue
        person, product = payload
        number = _admit(definition, states.get(person), last_entry.get(person), at, per_day)
        if number is None:
            continue
        per_day[at.date()] += 1
        last_entry[person] = (number, at)
        funnel.entered += 1
        fresh = State(person, number, definition.first, "running", at, product=product)
        take(engine.enter(definition, person, number, at, fact(person, fresh), product))
    run_timers(end)
    funnel.running = sum(1 for s in states.values() if s.status == "running")
    funnel.seconds = clock.perf_counter() - began
    return funnel


def _admit(
    definition: JourneyDefinition,
    state: State | None,
    last: tuple[int, datetime] | None,
    at: datetime,
    per_day: Counter[date],
) -> int | None:
    """The entry number of a person qualifying at ``at``, or None (the rules of
    :func:`surmesure.journeys.entering.admit`)."""
    if definition.limit_per_day is not None and per_day[at.date()] >= definition.limit_per_day:
        return None
    if last is None:
        return 1
    rule = definition.re_entry
    if rule == "never" or (state is not None and state.status == "running"):
        return None
    if isinstance(rule, ReEntry) and last[1] > at - timedelta(days=rule.after_days):
        return None
    return last[0] + 1


def _out_of_stock(conn: Connection, products: set[str]) -> set[str]:
    if not products:
        return set()
    st = schema.stock
    rows = conn.execute(
        sa.select(st.c.product_code)
        .where(st.c.product_code.in_(sorted(products)))
        .group_by(st.c.product_code)
        .having(sa.func.sum(st.c.quantity) <= 0)
    )
    return {str(r[0]) for r in rows}


def plot(funnel: Funnel, order: list[str], path: Path) -> Path:
    """The funnel as a picture: people through each step, sends marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["entered", *order]
    values = np.asarray([funnel.entered, *(funnel.through.get(s, 0) for s in order)], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
    bars = ax.barh(labels[::-1], values[::-1], color="#4C72B0")
    for bar, value in zip(bars, values[::-1], strict=True):
        ax.text(
            bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {int(value):,}", va="center"
        )
    ax.set_xlabel("people")
    ax.set_title(f"Journey {funnel.journey}: {funnel.start:%Y-%m-%d} to {funnel.end:%Y-%m-%d}")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
