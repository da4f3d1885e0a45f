"""Fit one uplift model per action on half of a multi-arm experiment; judge the next best action
on the other half against giving one action to everyone and against giving nothing.

The split is stratified by arm. Each action's model is fitted on its arm and the control arm of
the training half; on the held-out half every person gets the action with the highest predicted
``uplift * value - cost`` (or nothing), and the policy's incremental value is estimated by inverse
propensity weighting (:func:`.actions.policy_value`), totals scaled to the whole experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from surmesure.errors import InvalidInput
from surmesure.learn.uplift.actions import Action, Choice, next_best_action, policy_value
from surmesure.learn.uplift.data import ArmsData, Array
from surmesure.learn.uplift.evaluate import stratified_split
from surmesure.learn.uplift.learners import UpliftLearner, make_learner
from surmesure.learn.uplift.targeting import Interval


@dataclass(frozen=True, slots=True)
class ActionReport:
    """The held-out choice, its value, and each single action given to everyone."""

    learner: str
    n_train: int
    n_test: int
    choice: Choice
    uplift: Array  # held-out people x actions
    shares: dict[str, float]  # of held-out people, by chosen action (and "do nothing")
    policy: Interval
    everyone: dict[str, Interval]  # action name -> value of giving it to everyone
    models: tuple[UpliftLearner, ...] = ()  # each action's model, fitted on the training half


def fit_actions(
    data: ArmsData,
    actions: Sequence[Action],
    learner: str = "x",
    seed: int = 0,
    rounds: int = 400,
) -> ActionReport:
    """Next best action among ``actions`` (one per arm of ``data``, same order), out of sample."""
    if [a.name for a in actions] != list(data.arms):
        raise InvalidInput(
            f"Actions {[a.name for a in actions]} do not match the arms {list(data.arms)}.",
            field="actions",
            hint="give one value and cost per arm, in the arms' order",
        )
    split = stratified_split(data.arm, 0.5, seed)
    x_train, y_train, arm_train = data.x[split.train], data.y[split.train], data.arm[split.train]
    x_test = data.x[split.test]
    columns, models = [], []
    for i in range(len(actions)):
        rows = (arm_train == i) | (arm_train == -1)
        model = make_learner(learner, data.binary, seed)
        model.fit(x_train[rows], y_train[rows], (arm_train[rows] == i).astype(np.int8))
        columns.append(model.predict(x_test))
        models.append(model)
    uplift = np.column_stack(columns)
    choice = next_best_action(uplift, actions)
    y_test, arm_test = data.y[split.test], data.arm[split.test]
    people = data.y.size

    def value(chosen: np.ndarray) -> Interval:
        return policy_value(chosen, y_test, arm_test, actions, people, rounds, seed)

    names = [a.name for a in actions]
    shares = {name: float((choice.chosen == i).mean()) for i, name in enumerate(names)}
    shares["do nothing"] = float((choice.chosen == -1).mean())
    return ActionReport(
        learner=learner,
        n_train=int(split.train.size),
        n_test=int(split.test.size),
        choice=choice,
        uplift=uplift,
        shares=shares,
        policy=value(choice.chosen),
        everyone={name: value(np.full(y_test.size, i)) for i, name in enumerate(names)},
        models=tuple(models),
    )
