"""A next-best-action model as it is kept: the actions, the features with their encoding, and
one fitted uplift model per action; and the choice it makes for one person's values.

A feature is a ``number`` (used as it is) or ``text`` (one-hot over the ``levels`` seen when
fitting, as :func:`.data.encode` made them). A person's values are encoded the same way; a value
the model cannot read (missing, not a number, a level never seen) is reported, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
from threadpoolctl import ThreadpoolController

from surmesure.learn.uplift.actions import Action, Choice, next_best_action
from surmesure.learn.uplift.data import Array
from surmesure.learn.uplift.learners import UpliftLearner

#: below this many rows, predictions run on one thread
FEW_ROWS = 2_000


@cache
def _threads() -> ThreadpoolController:
    """The process's thread pools, inspected once (inspecting costs milliseconds)."""
    return ThreadpoolController()


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    kind: Literal["number", "text"]
    levels: tuple[str, ...] = ()

    def encode(self, value: Any) -> list[float] | str:
        """The feature's columns for ``value``, or why it cannot be read."""
        if self.kind == "number":
            if isinstance(value, bool):
                return [float(value)]
            try:
                number = float(value)
            except (TypeError, ValueError):
                return f"{value!r} is not a number"
            return [number] if np.isfinite(number) else f"{value!r} is not a finite number"
        text = str(value)
        if text not in self.levels:
            return f"{text!r} is not one of the levels the model saw ({', '.join(self.levels)})"
        return [1.0 if level == text else 0.0 for level in self.levels]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "levels": list(self.levels)}


def features_of(features: Sequence[str], encoded: Sequence[str]) -> tuple[Feature, ...]:
    """Each raw feature with its encoding, from the encoded column names of :func:`.data.encode`
    (``name`` for a number, ``name=level`` per level of a text)."""
    out = []
    for name in features:
        if name in encoded:
            out.append(Feature(name, "number"))
            continue
        prefix = f"{name}="
        out.append(
            Feature(name, "text", tuple(c[len(prefix) :] for c in encoded if c.startswith(prefix)))
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ActionModel:
    """A saved model: ``models[i]`` predicts the uplift of ``actions[i]``."""

    name: str
    version: int
    actions: tuple[Action, ...]
    features: tuple[Feature, ...]
    models: tuple[UpliftLearner, ...]
    learner: str = "x"

    def row(self, values: Mapping[str, Any]) -> tuple[Array | None, dict[str, str]]:
        """One person's encoded row, or ``None`` with why each unreadable feature failed."""
        columns: list[float] = []
        problems: dict[str, str] = {}
        for feature in self.features:
            if feature.name not in values or values[feature.name] is None:
                problems[feature.name] = "missing"
                continue
            encoded = feature.encode(values[feature.name])
            if isinstance(encoded, str):
                problems[feature.name] = encoded
            else:
                columns += encoded
        if problems:
            return None, problems
        return np.asarray([columns], dtype=np.float64), {}

    def choose(self, row: Array) -> tuple[Choice, Array]:
        """The best action for each row, with the predicted uplift of every action.

        A few rows are predicted on one thread: waking the OpenMP pool of the gradient-boosting
        models costs some twenty times what predicting one person does."""
        if row.shape[0] >= FEW_ROWS:
            uplift = np.column_stack([m.predict(row) for m in self.models])
        else:
            with _threads().limit(limits=1, user_api="openmp"):
                uplift = np.column_stack([m.predict(row) for m in self.models])
        return next_best_action(uplift, self.actions), uplift

    def describe(self) -> dict[str, Any]:
        """What is kept beside the fitted models (JSON)."""
        return {
            "learner": self.learner,
            "actions": [{"name": a.name, "value": a.value, "cost": a.cost} for a in self.actions],
            "features": [f.to_json() for f in self.features],
        }


def from_description(
    name: str, version: int, description: Mapping[str, Any], models: Sequence[UpliftLearner]
) -> ActionModel:
    return ActionModel(
        name=name,
        version=version,
        actions=tuple(
            Action(str(a["name"]), float(a["value"]), float(a["cost"]))
            for a in description["actions"]
        ),
        features=tuple(
            Feature(str(f["name"]), f["kind"], tuple(f.get("levels", ())))
            for f in description["features"]
        ),
        models=tuple(models),
        learner=str(description.get("learner", "x")),
    )
