"""Beta-Binomial model of two rates: exact chance to beat, expected loss, credible intervals.

Each rate has a Beta(prior_a + successes, prior_b + failures) posterior. The one-dimensional
integrals (P(B > A), E[max(A - B, 0)], the law of B - A) are computed by Gauss-Legendre
quadrature on panels placed at the quantiles of both posteriors, so a narrow and a wide
posterior are both resolved; the inner expectations are closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from surmesure.errors import InvalidInput
from surmesure.learn.frequentist import check_alpha

_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_EDGE_Q = np.concatenate([[1e-15], np.linspace(0.0, 1.0, 41)[1:-1], [1 - 1e-15]])


@dataclass(frozen=True, slots=True)
class RateInterval:
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class BetaBinomialResult:
    """Posterior comparison of two rates (treatment B against control A).

    ``expected_loss_treatment`` = E[max(A - B, 0)]: what shipping B costs if A is better.
    ``expected_loss_control`` = E[max(B - A, 0)].
    """

    control_rate: RateInterval
    treatment_rate: RateInterval
    control_mean: float
    treatment_mean: float
    chance_to_beat: float
    expected_loss_treatment: float
    expected_loss_control: float
    difference: RateInterval
    alpha: float


def _posterior(successes: float, n: int, a: float, b: float, name: str) -> stats.rv_continuous:
    if n < 0 or not 0 <= successes <= n:
        raise InvalidInput(
            f"Beta-Binomial '{name}' has {successes!r} successes out of {n!r}.",
            field=name,
            hint="successes must be between 0 and the number of people",
        )
    return stats.beta(a + successes, b + n - successes)


def _nodes(*laws: stats.rv_continuous) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Quadrature nodes and weights covering the mass of every law in ``laws``."""
    edges = np.unique(np.clip(np.concatenate([law.ppf(_EDGE_Q) for law in laws]), 0.0, 1.0))
    lo, hi = edges[:-1], edges[1:]
    half = (hi - lo)[:, None] / 2
    x = (lo[:, None] + hi[:, None]) / 2 + half * _GL_X[None, :]
    w = half * _GL_W[None, :]
    return x.ravel(), w.ravel()


def _excess(law: stats.rv_continuous, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """E[max(R - x, 0)] for R ~ law = Beta(a, b): mean·P(Beta(a+1, b) > x) - x·P(R > x)."""
    a, b = law.args
    shifted = stats.beta(a + 1, b)
    result: npt.NDArray[np.float64] = law.mean() * shifted.sf(x) - x * law.sf(x)
    return result


def beta_binomial(
    control_successes: float,
    control_n: int,
    treatment_successes: float,
    treatment_n: int,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
    alpha: float = 0.05,
) -> BetaBinomialResult:
    """Compare two rates under independent Beta(prior_a, prior_b) priors (uniform by default)."""
    check_alpha(alpha)
    if not (prior_a > 0 and prior_b > 0):
        raise InvalidInput(
            f"Beta prior ({prior_a!r}, {prior_b!r}) is not proper.",
            field="prior_a" if not prior_a > 0 else "prior_b",
            hint="both Beta prior parameters must be positive, e.g. 1 and 1",
        )
    law_a = _posterior(control_successes, control_n, prior_a, prior_b, "control")
    law_b = _posterior(treatment_successes, treatment_n, prior_a, prior_b, "treatment")
    x, w = _nodes(law_a, law_b)
    f_a, f_b = law_a.pdf(x), law_b.pdf(x)
    chance = float(np.sum(w * f_b * law_a.cdf(x)))
    loss_b = float(np.sum(w * f_b * _excess(law_a, x)))
    loss_a = float(np.sum(w * f_a * _excess(law_b, x)))

    def diff_cdf(d: float) -> float:
        return float(np.sum(w * f_a * law_b.cdf(x + d)))

    def quantile(q: float) -> float:
        return float(optimize.brentq(lambda d: diff_cdf(d) - q, -1.0, 1.0, xtol=1e-12))

    def interval(law: stats.rv_continuous) -> RateInterval:
        lower, upper = law.ppf([alpha / 2, 1 - alpha / 2])
        return RateInterval(float(lower), float(upper))

    return BetaBinomialResult(
        control_rate=interval(law_a),
        treatment_rate=interval(law_b),
        control_mean=float(law_a.mean()),
        treatment_mean=float(law_b.mean()),
        chance_to_beat=min(max(chance, 0.0), 1.0),
        expected_loss_treatment=max(loss_b, 0.0),
        expected_loss_control=max(loss_a, 0.0),
        difference=RateInterval(quantile(alpha / 2), quantile(1 - alpha / 2)),
        alpha=alpha,
    )
