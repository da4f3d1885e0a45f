"""A journey run over the store's own history in compressed time: what would have happened.

The window is the last ``days`` days of collected events (or from ``start``). People enter as
the journey's entry says (its event, a segment entry or exit recorded in ``segment_changes``,
a schedule, a date trait), under its re-entry rule and daily limit; then their later events
and orders (``Order Completed``) are replayed as signals, in time order, interleaved with
the timers of their pauses, through the same step function the worker uses (:mod:`.engine`).
Nothing is written: sends are counted, not recorded. Branch conditions and stock are read once,
at the start of the window, for everyone who enters (the store has no past states of them).

What is replayed is read by :mod:`.replayed`. The result is the funnel (:mod:`.funnel`): people
who entered, went through each step, sends per step, how the journey ended for each (by
reason), and the transitions per second of the replay.
"""

from __future__ import annotations

import heapq
import time as clock
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from surmesure.journeys import engine
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.engine import Facts, Outcome, State
from surmesure.journeys.entries import ReEntry
from surmesure.journeys.facts import facts_for, out_of_stock
from surmesure.journeys.funnel import Funnel
from surmesure.journeys.replayed import entries as qualified
from surmesure.journeys.replayed import history as replayed
from surmesure.journeys.replayed import window
from surmesure.store.engine import Store


def simulate(
    store: Store, definition: JourneyDefinition, days: int, *, start: datetime | None = None
) -> Funnel:
    """Replay the window through ``definition`` (see the module)."""
    start, end = window(store, days, start)
    funnel = Funnel(definition.name, start, end)
    with store.connect() as conn:
        history = replayed(conn, definition, start, end)
        entries = qualified(conn, definition, history, start, end)
        people = sorted({person for _, person, _ in entries})
        probe = [(definition, State(p, 1, definition.first, "running", start)) for p in people]
        facts = facts_for(store, conn, probe, start)
        products = {str(x) for _, _, x in entries if x is not None}
        out = out_of_stock(conn, products)
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
