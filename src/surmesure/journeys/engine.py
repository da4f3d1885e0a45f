"""The journey step function: (definition, state, signal, now, facts) -> new state + actions.

Pure: no store, no clock, no network. Everything it needs about the person beyond its state is
handed in as :class:`Facts` (which branch conditions hold, whether their product is out of
stock, their time zone), computed by the worker for a whole batch at once.

A person's :class:`State` is either ``running`` on a step that pauses (a ``wait`` until
``due_at``, a ``wait_for_event`` until the event or its timeout at ``due_at``) or ``done`` with
the reason it ended. :func:`enter` starts a person on the first step; :func:`step` applies one
signal:

- :class:`Tick` (time passes): a pause whose ``due_at`` has come moves on (a wait to ``next``,
  a wait-for-event to ``timeout``); earlier, nothing happens;
- :class:`Event`: the goal event ends the journey as a conversion (``goal``), an ``exit_on``
  event ends it (``exit_on``), both whatever the step; otherwise an event a wait-for-event
  waits for moves it to ``next``;
- :class:`ConsentWithdrawn`: the person leaves at once (``consent_withdrawn``);
- :class:`StockChange` of the person's product to out of stock: a person pausing before a send
  that has an ``out_of_stock`` exit is re-routed there at once;
- :class:`Location` within a wait-for-event's ``near_km``: moves it to ``next``;
- :class:`StepFailed` (a send or webhook refused for this person): its ``error`` exit, else the
  end (``failed``).

From a step, the person runs through every step that does not pause (send, branch, split,
update_trait, webhook, exit), each an action or a choice, until a pause or an exit; validation
guarantees that every loop holds a pause. A person on a split's control path is held out:
their sends are :class:`Send` actions with ``held=True`` (recorded, never delivered).
Times are naive UTC.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import assert_never

from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.model import Scalar
from surmesure.journeys.per_person import split_path, wait_until
from surmesure.journeys.state import (
    NO_FACTS,
    Action,
    Assigned,
    CallWebhook,
    ConsentWithdrawn,
    Event,
    Facts,
    Location,
    Outcome,
    Send,
    Signal,
    State,
    StepFailed,
    StockChange,
    Tick,
    UpdateTrait,
)
from surmesure.journeys.steps import (
    BranchStep,
    ExitStep,
    SendStep,
    SplitStep,
    UpdateTraitStep,
    WaitForEventStep,
    WaitStep,
    WebhookStep,
)

__all__ = [
    "NO_FACTS",
    "Action",
    "Assigned",
    "CallWebhook",
    "ConsentWithdrawn",
    "Event",
    "Facts",
    "Location",
    "Outcome",
    "Send",
    "Signal",
    "State",
    "StepFailed",
    "StockChange",
    "Tick",
    "UpdateTrait",
    "enter",
    "step",
]


# -- the function -----------------------------------------------------------------------------


def enter(
    definition: JourneyDefinition,
    person_id: int,
    entry: int,
    now: datetime,
    facts: Facts = NO_FACTS,
    product: str | None = None,
) -> Outcome:
    """A person starting the journey (their ``entry``-th time) at ``now``."""
    state = State(person_id, entry, definition.first, "running", now, product=product)
    return _run(definition, state, definition.first, now, facts)


def step(
    definition: JourneyDefinition,
    state: State,
    signal: Signal,
    now: datetime,
    facts: Facts = NO_FACTS,
) -> Outcome:
    """``state`` after ``signal`` at ``now`` (see the module for each signal)."""
    if state.status == "done":
        return Outcome(state)
    current = definition.by_id.get(state.step)
    if current is None:  # a step of no version: cannot happen for a person on their version
        return Outcome(replace(state, status="done", due_at=None, reason="unknown_step"))
    match signal:
        case Tick():
            if state.due_at is not None and now < state.due_at:
                return Outcome(state)
            if isinstance(current, WaitForEventStep):
                assert current.timeout is not None
                return _run(definition, state, current.timeout, now, facts)
            if isinstance(current, WaitStep):
                assert current.next is not None
                return _run(definition, state, current.next, now, facts)
            return _run(definition, state, current.id, now, facts)
        case Event(name=name, properties=properties):
            if definition.goal is not None and name == definition.goal.event:
                return _end(state, "goal")
            for rule in definition.exit_on:
                if rule.event == name and _has(properties, rule.where):
                    return _end(state, "exit_on")
            if (
                isinstance(current, WaitForEventStep)
                and current.wait_for_event.near_km is None
                and current.wait_for_event.event == name
                and _has(properties, current.wait_for_event.where)
            ):
                assert current.next is not None
                return _run(definition, state, current.next, now, facts)
            return Outcome(state)
        case ConsentWithdrawn():
            return _end(state, "consent_withdrawn")
        case StockChange(product=product, in_stock=in_stock):
            if in_stock or product != state.product:
                return Outcome(state)
            ahead = _send_ahead(definition, current)
            if ahead is not None and ahead.out_of_stock is not None:
                return _run(definition, state, ahead.out_of_stock, now, facts)
            return Outcome(state)
        case Location(distance_km=distance):
            near = current.wait_for_event.near_km if isinstance(current, WaitForEventStep) else None
            if near is not None and distance <= near:
                assert current.next is not None
                return _run(definition, state, current.next, now, facts)
            return Outcome(state)
        case StepFailed(step=failed, reason=reason):
            where = definition.by_id.get(failed)
            if where is not None and where.error is not None:
                return _run(definition, state, where.error, now, facts)
            return _end(state, "failed", detail=reason)
        case _:
            assert_never(signal)


def _has(properties: dict[str, Scalar], where: dict[str, Scalar]) -> bool:
    return all(k in properties and properties[k] == v for k, v in where.items())


def _send_ahead(definition: JourneyDefinition, current: object) -> SendStep | None:
    """The send a pausing step leads to next (``next``), if it is one."""
    if isinstance(current, WaitStep | WaitForEventStep) and current.next is not None:
        following = definition.by_id[current.next]
        if isinstance(following, SendStep):
            return following
    return None


def _end(state: State, reason: str, detail: str | None = None) -> Outcome:
    why = reason if detail is None else f"{reason}: {detail}"[:64]
    return Outcome(replace(state, status="done", due_at=None, reason=why))


def _run(
    definition: JourneyDefinition, state: State, start: str, now: datetime, facts: Facts
) -> Outcome:
    """Run from ``start`` through the steps that do not pause."""
    by_id = definition.by_id
    actions: list[Action] = []
    visited: list[str] = []
    held = state.held
    current = start
    for _ in range(len(by_id) + 1):
        node = by_id[current]
        visited.append(current)
        nxt: str | None
        match node:
            case SendStep():
                if state.product is not None and facts.out_of_stock and node.out_of_stock:
                    nxt = node.out_of_stock
                else:
                    actions.append(Send(node.id, held))
                    nxt = node.next
            case WaitStep():
                due = wait_until(node, now, facts.zone)
                return _paused(state, node.id, due, held, actions, visited)
            case WaitForEventStep():
                hours = node.wait_for_event.timeout_hours or 0.0
                due = now + timedelta(hours=hours)
                return _paused(state, node.id, due, held, actions, visited)
            case BranchStep():
                nxt = node.branch.then if node.id in facts.conditions else node.branch.else_
            case SplitStep():
                index = split_path(definition.name, node, state.person_id, state.entry)
                path = node.split.paths[index]
                held = held or path.control
                actions.append(Assigned(node.id, index, path.control))
                nxt = path.next
            case UpdateTraitStep():
                spec = node.update_trait
                if not held:
                    actions.append(UpdateTrait(node.id, spec.trait, spec.value))
                nxt = node.next
            case WebhookStep():
                if not held:
                    actions.append(CallWebhook(node.id, node.webhook.url, node.webhook.retries))
                nxt = node.next
            case ExitStep():
                done = replace(
                    state,
                    step=node.id,
                    status="done",
                    due_at=None,
                    held=held,
                    reason=node.exit.reason,
                )
                return Outcome(done, tuple(actions), tuple(visited))
            case _:
                assert_never(node)
        assert nxt is not None
        current = nxt
    raise AssertionError(f"journey {definition.name!r} loops without a pause from {start!r}")


def _paused(
    state: State,
    step_id: str,
    due: datetime,
    held: bool,
    actions: list[Action],
    visited: list[str],
) -> Outcome:
    # built directly: dataclasses.replace costs as much as the rest of a move
    moved = State(
        state.person_id, state.entry, step_id, "running", state.entered_at, due, state.product, held
    )
    return Outcome(moved, tuple(actions), tuple(visited))
