"""The uplift gate and what it earns: treat a person when ``uplift * value > cost``.

``uplift`` is the predicted incremental outcome of treating the person (outcome units), ``value``
the money one unit of outcome brings (1 when the outcome is already money, e.g. spend), ``cost``
the channel's cost per treated person.

The profit of a policy is estimated on held-out people of a randomized experiment: among those
the policy would treat, the difference between treated and control means is the incremental
outcome per treated person, so the incremental profit per person of the population is
``share_targeted * (value * (mean_treated - mean_control) - cost)``; treating no one earns 0 and
treating everyone earns the same figure over the whole population. Totals are scaled to
``population`` people (the held-out count by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from surmesure.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class PolicyProfit:
    """Expected incremental profit, in money, for ``population`` people, of three policies.

    ``policy`` treats where predicted ``uplift * value > cost``; ``treat_all`` treats everyone;
    ``treat_none`` nobody (always 0). ``std_error`` is that of ``policy``. NaN carries ``reason``.
    """

    value: float
    cost: float
    population: int
    targeted_share: float
    policy: float
    treat_all: float
    treat_none: float
    std_error: float
    reason: str | None = None


def treat(uplift: npt.ArrayLike, value: float, cost: float) -> npt.NDArray[np.bool_]:
    """Whom to treat: predicted incremental value strictly above the cost of treating."""
    return np.asarray(uplift, dtype=np.float64) * value > cost


def _profit(
    y: npt.NDArray[np.float64],
    t: npt.NDArray[np.bool_],
    mask: npt.NDArray[np.bool_],
    value: float,
    cost: float,
) -> tuple[float, float]:
    """Per-person incremental profit of treating ``mask``, and its standard error."""
    share = float(mask.mean())
    if share == 0.0:
        return 0.0, 0.0
    yt, yc = y[mask & t], y[mask & ~t]
    if yt.size < 2 or yc.size < 2:
        return float("nan"), float("nan")
    lift = float(yt.mean() - yc.mean())
    se = float(np.sqrt(yt.var(ddof=1) / yt.size + yc.var(ddof=1) / yc.size))
    return share * (value * lift - cost), share * value * se


def held_out(
    score: npt.ArrayLike, y: npt.ArrayLike, treated: npt.ArrayLike, value: float, cost: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Score, outcome and treated flag of held-out people as aligned arrays, checked with the
    value and cost a policy is judged at."""
    u = np.asarray(score, dtype=np.float64).ravel()
    y_ = np.asarray(y, dtype=np.float64).ravel()
    t = np.asarray(treated).ravel().astype(bool)
    if not (u.size == y_.size == t.size) or u.size == 0:
        raise InvalidInput(
            f"Score, outcome and treatment have sizes {u.size}, {y_.size}, {t.size}.",
            field="uplift",
            hint="give one prediction, outcome and treatment flag per held-out person",
        )
    if not (np.isfinite(value) and np.isfinite(cost)) or cost < 0:
        raise InvalidInput(
            f"Value {value} and cost {cost} must be finite, the cost not negative.",
            field="cost",
            hint="give the money one unit of outcome brings and the cost per treated person",
        )
    return u, y_, t


def policy_profit(
    uplift: npt.ArrayLike,
    y: npt.ArrayLike,
    treated: npt.ArrayLike,
    value: float = 1.0,
    cost: float = 0.0,
    population: int | None = None,
) -> PolicyProfit:
    """Incremental profit of the uplift gate against treating everyone and no one."""
    u, y_, t = held_out(uplift, y, treated, value, cost)
    people = u.size if population is None else population
    mask = treat(u, value, cost)
    per_person, se = _profit(y_, t, mask, value, cost)
    everyone, _ = _profit(y_, t, np.ones_like(mask), value, cost)
    reason = None
    if not np.isfinite(per_person):
        reason = "too few treated or control people among those the policy targets"
    return PolicyProfit(
        value=value,
        cost=cost,
        population=people,
        targeted_share=float(mask.mean()),
        policy=per_person * people,
        treat_all=everyone * people,
        treat_none=0.0,
        std_error=se * people,
        reason=reason,
    )
