"""The checks on a journey's steps as a graph: ids used once, every exit leading to a step,
every step reachable from the first, and no loop without a pause (a person would go round it
for ever within one move)."""

from __future__ import annotations

from surmesure.domain.campaigns import refuse
from surmesure.journeys.steps import (
    BranchStep,
    ExitStep,
    SplitStep,
    Step,
    WaitForEventStep,
    exits,
    pauses,
)


def check(steps: list[Step]) -> None:
    """Refuse (naming the step's place and the fix) a graph of ``steps`` that breaks a rule."""
    ids: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.id in ids:
            raise refuse(
                f"steps[{i}].id",
                f"step id {step.id!r} is used twice",
                "give each step its own id",
            )
        ids[step.id] = i
    for i, step in enumerate(steps):
        if isinstance(step, WaitForEventStep) and step.timeout is None:
            raise refuse(
                f"steps[{i}].timeout",
                f"step {step.id!r} waits for an event with no timeout exit",
                "add `timeout: STEP` (and `timeout_hours:` under wait_for_event)",
            )
        if isinstance(step, WaitForEventStep) and step.wait_for_event.timeout_hours is None:
            raise refuse(
                f"steps[{i}].wait_for_event.timeout_hours",
                f"step {step.id!r} could wait for ever",
                "add `timeout_hours: N`",
            )
        if not isinstance(step, ExitStep | BranchStep | SplitStep) and step.next is None:
            raise refuse(
                f"steps[{i}].next",
                f"step {step.id!r} leads nowhere",
                "add `next: STEP`, or make it an `exit` step",
            )
        for field, target in exits(step):
            if target not in ids:
                raise refuse(
                    f"steps[{i}].{field}",
                    f"there is no step {target!r}",
                    "use the id of a step of this journey: " + ", ".join(ids),
                )
    seen = _reachable(steps, ids)
    for i, step in enumerate(steps):
        if step.id not in seen:
            raise refuse(
                f"steps[{i}]",
                f"step {step.id!r} cannot be reached from the first step",
                "lead to it from another step's next, or remove it",
            )
    cycle = _cycle_without_pause(steps, ids)
    if cycle:
        raise refuse(
            f"steps[{ids[cycle[0]]}]",
            "the steps " + " -> ".join(cycle) + " loop without a wait",
            "put a `wait` or `wait_for_event` step on the loop",
        )
    return None


def _reachable(steps: list[Step], ids: dict[str, int]) -> set[str]:
    seen = {steps[0].id}
    todo = [steps[0]]
    while todo:
        for _, target in exits(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(steps[ids[target]])
    return seen


def _cycle_without_pause(steps: list[Step], ids: dict[str, int]) -> list[str] | None:
    """A loop of steps none of which pauses, as ids (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(step: Step, path: list[str]) -> list[str] | None:
        state[step.id] = 1
        path.append(step.id)
        if not pauses(step):
            for _, target in exits(step):
                nxt = steps[ids[target]]
                if pauses(nxt):
                    continue
                if state.get(target) == 1:
                    return [*path[path.index(target) :], target]
                if target not in state:
                    found = visit(nxt, path)
                    if found:
                        return found
        path.pop()
        state[step.id] = 2
        return None

    for step in steps:
        if step.id not in state and not pauses(step):
            found = visit(step, [])
            if found:
                return found
    return None


def ahead(steps: list[Step], start: str) -> set[str]:
    """The steps a move from step ``start`` may run through: ``start``, where its exits lead,
    and on through the steps that do not pause (a pause is reached, not passed)."""
    by_id = {s.id: s for s in steps}
    if start not in by_id:
        return {start}
    seen = {start}
    todo = [by_id[start]]
    while todo:
        step = todo.pop()
        for _, target in exits(step):
            if target not in seen:
                seen.add(target)
                if not pauses(by_id[target]):
                    todo.append(by_id[target])
    return seen
