"""Next best action: per person, the action with the highest expected incremental value.

Each action ``a`` (an offer, a channel, ...) has a predicted uplift per person ``u_a`` (the
expected outcome if given ``a`` minus the expected outcome if given nothing, in outcome units),
a ``value`` per unit of outcome (money) and a ``cost`` per person it is given to. Its expected
incremental value is ``u_a * value_a - cost_a``; "do nothing" is always an action worth exactly
0, so a person gets an action only when one is expected to earn more than it costs. Ties go to
the action listed first, and nothing beats an action tied at 0.

The value of a choice of action per person (a policy) is estimated on held-out people of an
experiment in which each arm was given at random, with the arm's observed share ``p_a`` as its
probability (inverse propensity weighting). Per person of the population::

    1/n * sum_i [ 1{arm_i = chosen_i} / p(chosen_i) * (value * y_i - cost)
                  - 1{arm_i = nothing} / p(nothing) * value * y_i ]     (chosen_i != nothing)

i.e. what the people given their chosen action earned, minus what the control people would have
earned anyway, each reweighted to the whole population. People for whom nothing is chosen add 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from surmesure.errors import InvalidInput
from surmesure.learn.uplift.targeting import Interval

Array = npt.NDArray[np.float64]
NOTHING = "do nothing"


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    value: float
    cost: float


@dataclass(frozen=True, slots=True)
class Choice:
    """Per person: index of the chosen action (-1 for nothing) and every action's value."""

    chosen: npt.NDArray[np.intp]
    expected: Array  # (people, actions): uplift * value - cost
    actions: tuple[Action, ...]

    def name(self, person: int) -> str:
        i = int(self.chosen[person])
        return NOTHING if i < 0 else self.actions[i].name

    def explain(self, person: int, uplift: Array, unit: str = "") -> str:
        """Why ``person`` gets their action: every option's arithmetic, best first."""
        money = f" {unit}" if unit else ""
        parts = [
            (
                float(self.expected[person, j]),
                f"{a.name}: uplift {uplift[person, j]:+.4f} x {a.value:g}{money} - "
                f"{a.cost:g}{money} = {self.expected[person, j]:+.4f}{money}",
            )
            for j, a in enumerate(self.actions)
        ]
        parts.append((0.0, f"{NOTHING}: 0{money}"))
        parts.sort(key=lambda p: -p[0])
        return f"{self.name(person)} (" + "; ".join(text for _, text in parts) + ")"


def _check(actions: Sequence[Action]) -> None:
    names = [a.name for a in actions]
    if not actions or len(set(names)) != len(names) or NOTHING in names:
        raise InvalidInput(
            f"Actions {names} must be one or more distinct names other than {NOTHING!r}.",
            field="actions",
            hint="name each action once; doing nothing is always considered",
        )
    for a in actions:
        if not (np.isfinite(a.value) and np.isfinite(a.cost)) or a.cost < 0:
            raise InvalidInput(
                f"Action {a.name!r} has value {a.value} and cost {a.cost}.",
                field="actions",
                hint="give a finite value per unit of outcome and a cost of 0 or more",
            )


def next_best_action(uplift: npt.ArrayLike, actions: Sequence[Action]) -> Choice:
    """The best action per person from ``uplift`` (one column per action, in ``actions`` order)."""
    _check(actions)
    u = np.asarray(uplift, dtype=np.float64)
    if u.ndim != 2 or u.shape[1] != len(actions):
        raise InvalidInput(
            f"Uplift of shape {u.shape} for {len(actions)} actions.",
            field="uplift",
            hint="give one column of predicted uplift per action",
        )
    values = np.array([a.value for a in actions])
    costs = np.array([a.cost for a in actions])
    expected = u * values[None, :] - costs[None, :]
    best = np.argmax(expected, axis=1)
    worth = expected[np.arange(u.shape[0]), best] > 0.0
    chosen = np.where(worth, best, -1).astype(np.intp)
    return Choice(chosen=chosen, expected=expected, actions=tuple(actions))


def _ipw(
    y: Array,
    arm: npt.NDArray[np.intp],
    chosen: npt.NDArray[np.intp],
    values: Array,
    costs: Array,
    share: Array,
) -> Array:
    """Per-person value of the policy; ``y``, ``arm``, ``chosen`` hold one resample per row.

    ``arm`` and ``chosen`` use -1 for nothing; ``share[0]`` is nothing's, ``share[a + 1]``
    action ``a``'s.
    """
    acted = chosen >= 0
    pick = np.where(acted, chosen, 0)
    hit = (arm == chosen) & acted
    gain = hit * (values[pick] * y - costs[pick]) / share[pick + 1]
    base = ((arm == -1) & acted) * values[pick] * y / share[0]
    return np.asarray((gain - base).mean(axis=1), dtype=np.float64)


def policy_value(
    chosen: npt.ArrayLike,
    y: npt.ArrayLike,
    arm: npt.ArrayLike,
    actions: Sequence[Action],
    population: int | None = None,
    rounds: int = 400,
    seed: int = 0,
) -> Interval:
    """Incremental value, for ``population`` people, of giving each held-out person ``chosen``.

    ``arm`` is the arm each held-out person was given (-1 for nothing, else the action's index).
    The interval is a 95% percentile bootstrap over the held-out people, within each arm.
    """
    _check(actions)
    c = np.asarray(chosen).ravel().astype(np.intp)
    y_ = np.asarray(y, dtype=np.float64).ravel()
    a = np.asarray(arm).ravel().astype(np.intp)
    if not (c.size == y_.size == a.size) or c.size == 0:
        raise InvalidInput(
            f"Choice, outcome and arm have sizes {c.size}, {y_.size}, {a.size}.",
            field="arm",
            hint="give one choice, outcome and arm per held-out person",
        )
    share = np.array([(a == k).mean() for k in range(-1, len(actions))])
    if (share == 0).any():
        raise InvalidInput(
            "Every action and doing nothing need held-out people who were given them.",
            field="arm",
            hint="evaluate on an experiment with one arm per action and a control arm",
        )
    values = np.array([x.value for x in actions])
    costs = np.array([x.cost for x in actions])
    people = c.size if population is None else population
    point = float(_ipw(y_[None, :], a[None, :], c[None, :], values, costs, share)[0])
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(a == k) for k in range(-1, len(actions))]
    draws = []
    block = max(1, 1_000_000 // c.size)
    for start in range(0, rounds, block):
        size = min(block, rounds - start)
        picks = np.hstack([g[rng.integers(0, g.size, (size, g.size))] for g in groups])
        draws.append(_ipw(y_[picks], a[picks], c[picks], values, costs, share))
    low, high = np.percentile(np.concatenate(draws), [2.5, 97.5])
    return Interval(point * people, float(low) * people, float(high) * people)
