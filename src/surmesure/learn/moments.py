"""Sufficient statistics of one metric in one variant: the only input the statistics need.

A store computes them in one aggregate query (``count(*)``, ``sum(y)``, ``sum(y*y)`` and, for
CUPED, ``sum(x)``, ``sum(x*x)``, ``sum(x*y)`` over a pre-period covariate ``x``). Moments add, so
daily or per-segment figures combine by ``+``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from surmesure.errors import InvalidInput

MetricKind = Literal["binomial", "mean"]


@dataclass(frozen=True, slots=True)
class Covariate:
    """Pre-period covariate moments for CUPED: sum of x, of x², and of x·y."""

    sum: float
    sum_squares: float
    cross: float


@dataclass(frozen=True, slots=True)
class Moments:
    """n, Σy and Σy² of a metric in one variant (and the covariate moments for CUPED).

    ``kind="binomial"`` marks a 0/1 metric: its variance is p(1 - p), the population form,
    as in a test of two proportions. ``kind="mean"`` uses the sample variance (n - 1).
    """

    n: int
    sum: float
    sum_squares: float
    kind: MetricKind = "mean"
    covariate: Covariate | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise InvalidInput(
                f"Moments 'n' has value {self.n!r}. Not a count.",
                field="n",
                hint="pass the number of people as a non-negative integer",
            )
        for name in ("sum", "sum_squares"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise InvalidInput(
                    f"Moments '{name}' has value {value!r}. Not a finite number.",
                    field=name,
                    hint="drop missing or infinite metric values before summing",
                )
        if self.kind not in ("binomial", "mean"):
            raise InvalidInput(
                f"Moments 'kind' has value {self.kind!r}.",
                field="kind",
                hint="use 'binomial' for 0/1 metrics or 'mean' for any other",
            )
        if self.kind == "binomial" and not 0 <= self.sum <= self.n:
            raise InvalidInput(
                f"Moments 'sum' has value {self.sum!r} for a binomial metric over {self.n} people.",
                field="sum",
                hint="a binomial sum counts successes: between 0 and n",
            )
        if self.sum_squares < -1e-9 * max(1.0, abs(self.sum)):
            raise InvalidInput(
                f"Moments 'sum_squares' has value {self.sum_squares!r}. A sum of squares is >= 0.",
                field="sum_squares",
                hint="pass sum(y*y), not a variance",
            )

    @property
    def mean(self) -> float:
        """Σy / n; 0 for an empty variant (callers check ``n`` for a reason)."""
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """p(1-p) for binomial metrics, the sample variance otherwise; 0 when undefined."""
        if self.kind == "binomial":
            p = self.mean
            return p * (1.0 - p)
        if self.n <= 1:
            return 0.0
        return max((self.sum_squares - self.sum * self.sum / self.n) / (self.n - 1), 0.0)

    def __add__(self, other: Moments) -> Moments:
        if other.kind != self.kind:
            raise InvalidInput(
                "Cannot add moments of different kinds.",
                field="kind",
                hint="sum binomial with binomial and mean with mean",
            )
        cov: Covariate | None = None
        if self.covariate is not None and other.covariate is not None:
            cov = Covariate(
                self.covariate.sum + other.covariate.sum,
                self.covariate.sum_squares + other.covariate.sum_squares,
                self.covariate.cross + other.covariate.cross,
            )
        return Moments(
            self.n + other.n,
            self.sum + other.sum,
            self.sum_squares + other.sum_squares,
            self.kind,
            cov,
        )

    @classmethod
    def binomial(cls, n: int, successes: float) -> Moments:
        """Moments of a 0/1 metric from its count of successes."""
        return cls(n=n, sum=successes, sum_squares=successes, kind="binomial")

    @classmethod
    def of(
        cls,
        values: npt.ArrayLike,
        covariate: npt.ArrayLike | None = None,
        kind: MetricKind = "mean",
    ) -> Moments:
        """Moments of an array of per-person values (and of a same-length covariate)."""
        y = np.asarray(values, dtype=np.float64)
        cov: Covariate | None = None
        if covariate is not None:
            x = np.asarray(covariate, dtype=np.float64)
            if x.shape != y.shape:
                raise InvalidInput(
                    f"Covariate has {x.size} values for {y.size} metric values.",
                    field="covariate",
                    hint="pass one covariate value per person",
                )
            cov = Covariate(float(x.sum()), float(x @ x), float(x @ y))
        return cls(int(y.size), float(y.sum()), float(y @ y), kind, cov)


def covariance(m: Moments) -> float:
    """Sample covariance of metric and covariate; 0 when undefined."""
    if m.covariate is None or m.n <= 1:
        return 0.0
    return (m.covariate.cross - m.sum * m.covariate.sum / m.n) / (m.n - 1)


def covariate_variance(m: Moments) -> float:
    """Sample variance of the covariate; 0 when undefined."""
    if m.covariate is None or m.n <= 1:
        return 0.0
    c = m.covariate
    return max((c.sum_squares - c.sum * c.sum / m.n) / (m.n - 1), 0.0)
