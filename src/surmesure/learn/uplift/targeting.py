"""What targeting the top of a ranking earns, against treating everyone and against random.

Judged on held-out people of a randomized experiment (outcome ``y``, 0/1 ``treated``) ranked by
a score (predicted uplift, highest first; ties keep the input order). Treating the top share
``s`` of ``n`` people means the first ``k = round(s * n)`` of that ranking. Among them, treated
and control people were assigned at random, so the difference of their mean outcomes estimates
the incremental outcome per treated person, and the incremental value per person of the whole
population is::

    (k / n) * (value * (mean_treated(top k) - mean_control(top k)) - cost)

Treating everyone is the same figure with ``k = n``; treating a random ``s`` earns ``s`` times the
everyone figure. Money figures are totals for ``population`` people (the held-out count by
default), in the currency ``value`` and ``cost`` are given in.

Intervals are 95% percentile intervals of a bootstrap that resamples the held-out people within
each arm (``rounds`` resamples, the ranking fixed): for each policy, and for the policy's gain
over random targeting of the same share, which shares most of its noise with both and so is far
tighter than the two intervals side by side suggest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from surmesure.errors import InvalidInput
from surmesure.learn.uplift.policy import held_out

Array = npt.NDArray[np.float64]
SHARES = (0.1, 0.2, 0.5)


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class TargetingRow:
    """Treating the top ``share`` by the score, a random ``share``, and the difference."""

    share: float
    people: int
    policy: Interval
    random: Interval
    gain_over_random: Interval


@dataclass(frozen=True, slots=True)
class Targeting:
    """Rows by share, then ``everyone`` (share 1); ``reason`` says why a figure is NaN."""

    value: float
    cost: float
    population: int
    rows: tuple[TargetingRow, ...]
    everyone: Interval
    rounds: int
    reason: str | None = None


def _top_values(
    y: Array,
    t: Array,
    order: npt.NDArray[np.intp],
    counts: Sequence[int],
    value: float,
    cost: float,
) -> Array:
    """Per-person incremental value of treating the first ``counts`` of ``order``.

    ``y``, ``t`` hold one row per resample (2-D); one column of the result per count.
    """
    n = order.size
    ys, ts = y[:, order], t[:, order]
    yt = np.cumsum(ys * ts, axis=1)
    nt = np.cumsum(ts, axis=1)
    yc = np.cumsum(ys * (1.0 - ts), axis=1)
    nc = np.cumsum(1.0 - ts, axis=1)
    out = np.empty((y.shape[0], len(counts)))
    for j, k in enumerate(counts):
        if k == 0:
            out[:, j] = 0.0
            continue
        i = k - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            lift = yt[:, i] / nt[:, i] - yc[:, i] / nc[:, i]
        out[:, j] = (k / n) * (value * lift - cost)
    return out


def _interval(point: float, draws: Array) -> Interval:
    point = float(point)
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(point) or finite.size < draws.size:
        return Interval(point, float("nan"), float("nan"))
    low, high = np.percentile(finite, [2.5, 97.5])
    return Interval(point, float(low), float(high))


def targeting_value(
    score: npt.ArrayLike,
    y: npt.ArrayLike,
    treated: npt.ArrayLike,
    value: float = 1.0,
    cost: float = 0.0,
    shares: Sequence[float] = SHARES,
    population: int | None = None,
    rounds: int = 400,
    seed: int = 0,
) -> Targeting:
    """Incremental value of treating the top ``shares`` by ``score``, everyone, and at random."""
    s, y_, t = held_out(score, y, treated, value, cost)
    if any(not 0.0 < share <= 1.0 for share in shares):
        raise InvalidInput(
            f"Shares {list(shares)} must lie in (0, 1].", field="shares", hint="e.g. 0.1,0.2,0.5"
        )
    if rounds < 1:
        raise InvalidInput(f"{rounds} bootstrap rounds.", field="rounds", hint="use 400")
    n = s.size
    people = n if population is None else population
    order = np.argsort(-s, kind="stable")
    counts = [round(share * n) for share in shares] + [n]
    point = _top_values(y_[None, :], t[None, :].astype(np.float64), order, counts, value, cost)[0]
    draws = _bootstrap(y_, t, order, counts, value, cost, rounds, seed)
    rows = []
    every_point, every_draws = point[-1], draws[:, -1]
    for j, share in enumerate(shares):
        random_point, random_draws = share * every_point, share * every_draws
        rows.append(
            TargetingRow(
                share=float(share),
                people=round(share * people),
                policy=_scaled(_interval(point[j], draws[:, j]), people),
                random=_scaled(_interval(random_point, random_draws), people),
                gain_over_random=_scaled(
                    _interval(point[j] - random_point, draws[:, j] - random_draws), people
                ),
            )
        )
    reason = None
    if not np.all(np.isfinite(point)):
        reason = "a targeted group holds no treated or no control person"
    return Targeting(
        value=value,
        cost=cost,
        population=people,
        rows=tuple(rows),
        everyone=_scaled(_interval(every_point, every_draws), people),
        rounds=rounds,
        reason=reason,
    )


def _bootstrap(
    y: Array,
    t: npt.NDArray[np.bool_],
    order: npt.NDArray[np.intp],
    counts: Sequence[int],
    value: float,
    cost: float,
    rounds: int,
    seed: int,
) -> Array:
    """Resample within each arm, keeping each person's rank; a block of resamples at a time."""
    rng = np.random.default_rng(seed)
    rank = np.empty(order.size, dtype=np.intp)
    rank[order] = np.arange(order.size)
    arms = [np.flatnonzero(t), np.flatnonzero(~t)]
    out = []
    block = max(1, 1_000_000 // max(order.size, 1))
    for start in range(0, rounds, block):
        size = min(block, rounds - start)
        picks = np.hstack([arm[rng.integers(0, arm.size, (size, arm.size))] for arm in arms])
        # sorting the picked people by rank keeps the ranking fixed for the resample
        picks = np.take_along_axis(picks, np.argsort(rank[picks], axis=1, kind="stable"), axis=1)
        identity = np.arange(order.size)
        out.append(
            _top_values(y[picks], t[picks].astype(np.float64), identity, counts, value, cost)
        )
    return np.vstack(out)


def _scaled(interval: Interval, people: int) -> Interval:
    return Interval(interval.estimate * people, interval.low * people, interval.high * people)
