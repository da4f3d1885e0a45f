"""Thompson sampling over content variants with a conversion reward (Beta-Bernoulli).

Each arm keeps a Beta(alpha, beta) posterior of its conversion rate, starting from a prior
(Beta(1, 1), uniform, by default). To choose, draw one rate per arm from its posterior and play
the highest; a conversion adds 1 to alpha, a non-conversion 1 to beta. Arms that are clearly
worse get played less and less, so the cumulative regret grows like log(rounds) instead of
linearly as with a fixed split.

:class:`ThompsonSampler` is the small pure object the decision stage keeps per placement: it does
no I/O, takes its random generator from the caller (so a seeded run is reproducible) and turns
into a JSON-ready dict and back. :func:`thompson_choices` is the same draw for many independent
samplers at once (simulations, batches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from surmesure.errors import InvalidInput


def thompson_choices(
    alpha: npt.ArrayLike, beta: npt.ArrayLike, rng: np.random.Generator
) -> npt.NDArray[np.intp]:
    """Index of the arm to play for each row of posterior parameters (shape ``(..., arms)``)."""
    draws = rng.beta(np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64))
    return np.asarray(np.argmax(draws, axis=-1), dtype=np.intp)


@dataclass
class ThompsonSampler:
    """Beta-Bernoulli Thompson sampling over named arms; mutable, one instance per placement."""

    arms: tuple[str, ...]
    alpha: list[float] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.arms = tuple(self.arms)
        if len(self.arms) < 1 or len(set(self.arms)) != len(self.arms):
            raise InvalidInput(
                f"Arms {list(self.arms)} must be one or more distinct names.",
                field="arms",
                hint="name each content variant once",
            )
        self.alpha = list(self.alpha) or [1.0] * len(self.arms)
        self.beta = list(self.beta) or [1.0] * len(self.arms)
        params = self.alpha + self.beta
        if len(self.alpha) != len(self.arms) or len(self.beta) != len(self.arms):
            raise InvalidInput(
                "Give one alpha and one beta per arm.", field="alpha", hint="or leave them out"
            )
        if not all(np.isfinite(p) and p > 0 for p in params):
            raise InvalidInput(
                "Beta parameters must be positive numbers.",
                field="alpha",
                hint="start from alpha = beta = 1",
            )

    def _index(self, arm: str) -> int:
        try:
            return self.arms.index(arm)
        except ValueError:
            raise InvalidInput(
                f"Unknown arm {arm!r}.", field="arm", hint=f"choose one of {list(self.arms)}"
            ) from None

    def choose(self, rng: np.random.Generator) -> str:
        """The arm to show now: the highest of one posterior draw per arm."""
        return self.arms[int(thompson_choices(self.alpha, self.beta, rng))]

    def update(self, arm: str, reward: bool | int | float) -> None:
        """Record one outcome of ``arm``: a conversion (1 / True) or not (0 / False)."""
        if reward not in (0, 1):
            raise InvalidInput(
                f"Reward {reward!r} is not a conversion flag.", field="reward", hint="use 0 or 1"
            )
        self.update_counts(arm, int(reward), 1)

    def update_counts(self, arm: str, conversions: int, trials: int) -> None:
        """Record ``conversions`` out of ``trials`` showings of ``arm`` at once (a batch)."""
        if not 0 <= conversions <= trials:
            raise InvalidInput(
                f"{conversions} conversions out of {trials} trials is impossible.",
                field="conversions",
                hint="conversions must be between 0 and the number of trials",
            )
        i = self._index(arm)
        self.alpha[i] += conversions
        self.beta[i] += trials - conversions

    def means(self) -> dict[str, float]:
        """Posterior mean conversion rate per arm."""
        return {a: x / (x + y) for a, x, y in zip(self.arms, self.alpha, self.beta, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: ``{"arms": {name: {"alpha": .., "beta": ..}}}`` in arm order."""
        return {
            "arms": {
                a: {"alpha": x, "beta": y}
                for a, x, y in zip(self.arms, self.alpha, self.beta, strict=True)
            }
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ThompsonSampler:
        """The sampler saved by :meth:`to_dict`."""
        try:
            arms: Mapping[str, Mapping[str, float]] = state["arms"]
            names: Sequence[str] = list(arms)
            return cls(
                tuple(names),
                [float(arms[a]["alpha"]) for a in names],
                [float(arms[a]["beta"]) for a in names],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"Not a saved sampler state: {exc}.",
                field="state",
                hint='expected {"arms": {name: {"alpha": .., "beta": ..}}}',
            ) from exc
