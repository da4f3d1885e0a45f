"""BG/NBD: how often a customer buys and whether they are still a customer (pure numerics).

Fader, Hardie and Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2). While alive a customer buys at a Poisson rate drawn
from Gamma(r, alpha); after each purchase they leave for good with a probability drawn from
Beta(a, b). Per customer the sufficient statistics are ``x`` (repeat purchases: purchase
periods after the first), ``t_x`` (time from the first to the last purchase) and ``T`` (time
from the first purchase to the end of observation), all in one time unit (``alpha`` is in that
unit; ``r``, ``a`` and ``b`` are unitless).

Parameters are fitted by maximum likelihood in log space (so they stay positive) with the
analytic gradient, vectorized over the customers; customers with identical statistics can be
passed once with a weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from surmesure.errors import InvalidInput

Array = npt.NDArray[np.float64]


class BgNbdParams(BaseModel):
    """Fitted BG/NBD parameters, the mean log-likelihood and how the fit went."""

    model_config = ConfigDict(frozen=True)

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool
    message: str = ""


def _check(x: Array, t_x: Array, T: Array) -> None:
    if x.size == 0:
        raise InvalidInput("No customer to fit BG/NBD on.", hint="import orders first")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T) or np.any((x == 0) & (t_x != 0)):
        raise InvalidInput(
            "BG/NBD statistics must have x >= 0, 0 <= t_x <= T and t_x = 0 when x = 0.",
            hint="compute them with surmesure.derive.clv.summary",
        )


def log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> tuple[Array, Array]:
    """Per-customer log-likelihood and its gradient in log-parameters (shape (4, n))."""
    r, alpha, a, b = params
    bought = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    b_x1 = np.where(bought, b + x - 1, 1.0)
    a4 = np.where(bought, np.log(a) - np.log(b_x1) - (r + x) * np.log(alpha + t_x), -np.inf)
    mix = np.logaddexp(a3, a4)
    w3 = np.exp(a3 - mix)
    w4 = np.exp(a4 - mix)
    d_r = (
        digamma(r + x)
        - digamma(r)
        + np.log(alpha)
        - w3 * np.log(alpha + T)
        - w4 * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / b_x1
    grad = np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return a1 + a2 + mix, grad


@dataclass(frozen=True)
class _Statistics:
    """Customers factorized by column: the special functions of ``x`` and the logarithms of
    ``alpha + T`` and ``alpha + t_x`` are computed on distinct values only, then gathered."""

    x: Array  # per row
    weight: Array  # per row
    x_values: Array
    x_code: npt.NDArray[np.intp]
    x_weight: Array  # total weight of each distinct x
    T_values: Array
    T_code: npt.NDArray[np.intp]
    t_values: Array
    t_code: npt.NDArray[np.intp]
    total: float


def _statistics(x: Array, t_x: Array, T: Array, weight: Array) -> _Statistics:
    x_values, x_code = np.unique(x, return_inverse=True)
    T_values, T_code = np.unique(T, return_inverse=True)
    t_values, t_code = np.unique(t_x, return_inverse=True)
    return _Statistics(
        x=x,
        weight=weight,
        x_values=x_values,
        x_code=x_code.reshape(-1),
        x_weight=np.asarray(
            np.bincount(x_code.reshape(-1), weights=weight, minlength=len(x_values)),
            dtype=np.float64,
        ),
        T_values=T_values,
        T_code=T_code.reshape(-1),
        t_values=t_values,
        t_code=t_code.reshape(-1),
        total=float(weight.sum()),
    )


def _objective(log_params: Array, s: _Statistics) -> tuple[float, Array]:
    """Minus the mean log-likelihood and its gradient in log-parameters: the sum of
    :func:`log_likelihood` over customers, computed per distinct value where it can be."""
    r, alpha, a, b = np.exp(log_params)
    ux, W = s.x_values, s.x_weight
    bought = ux > 0
    b_x1 = np.where(bought, b + ux - 1, 1.0)
    by_x = (
        gammaln(r + ux)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + ux)
        - gammaln(b)
        - gammaln(a + b + ux)
    )
    log_a4 = np.where(bought, np.log(a) - np.log(b_x1), -np.inf)
    rx = r + s.x
    log_T = np.log(alpha + s.T_values)[s.T_code]
    log_t = np.log(alpha + s.t_values)[s.t_code]
    a3 = -rx * log_T
    a4 = log_a4[s.x_code] - rx * log_t
    mix = np.logaddexp(a3, a4)
    w3 = np.exp(a3 - mix)
    ww3 = s.weight * w3
    ww4 = s.weight - ww3
    ll = W @ by_x + s.weight @ mix
    d_r = W @ (digamma(r + ux) - digamma(r) + np.log(alpha)) - ww3 @ log_T - ww4 @ log_t
    inv_T = (1 / (alpha + s.T_values))[s.T_code]
    inv_t = (1 / (alpha + s.t_values))[s.t_code]
    d_alpha = s.total * r / alpha - (ww3 * rx) @ inv_T - (ww4 * rx) @ inv_t
    w4_by_x = np.bincount(s.x_code, weights=ww4, minlength=len(ux))
    d_a = W @ (digamma(a + b) - digamma(a + b + ux)) + w4_by_x.sum() / a
    d_b = W @ (digamma(a + b) + digamma(b + ux) - digamma(b) - digamma(a + b + ux)) - (
        w4_by_x @ (1 / b_x1)
    )
    grad = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return -float(ll) / s.total, -grad / s.total


def fit(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for customers with statistics ``(x, t_x, T)``;
    ``weights`` counts how many customers share each row (default 1)."""
    xs, txs, Ts = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    _check(xs, txs, Ts)
    w = np.ones_like(xs) if weights is None else np.asarray(weights, dtype=np.float64)
    stats = _statistics(xs, txs, Ts, w)
    # the line search may try a step where a parameter under- or overflows (a short history
    # with few repeats): that step is rejected as an infinite objective, not an error
    with np.errstate(divide="ignore", over="ignore", invalid="ignore", under="ignore"):
        result = minimize(
            _objective, np.zeros(4), args=(stats,), jac=True, method="BFGS", options={"gtol": 1e-7}
        )
    r, alpha, a, b = np.exp(result.x)
    return BgNbdParams(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=-float(result.fun),
        customers=round(stats.total),
        converged=bool(result.success or np.max(np.abs(result.jac)) < 1e-6),
        message=str(result.message),
    )


def p_alive(params: BgNbdParams, x: Array, t_x: Array, T: Array) -> Array:
    """P(still a customer at T | x, t_x, T): 1 for customers with no repeat purchase."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(
        a / (b + np.maximum(x, 1) - 1)
    )
    return np.where(x == 0, 1.0, expit(-log_odds_dead))


def p_purchase(params: BgNbdParams, t: float, x: Array, t_x: Array, T: Array) -> Array:
    """P(at least one purchase in the next ``t`` time units | x, t_x, T).

    Drop-out happens only just after a purchase, so a customer alive at ``T`` buys nothing
    in ``(T, T + t]`` with probability ``E[exp(-lambda t)]`` under the rate's posterior given
    alive, Gamma(r + x, alpha + T): ``((alpha + T) / (alpha + T + t)) ** (r + x)``; a
    customer who has dropped out buys nothing."""
    log_idle = (params.r + x) * np.log((params.alpha + T) / (params.alpha + T + t))
    return np.asarray(p_alive(params, x, t_x, T) * -np.expm1(log_idle), np.float64)


def expected_purchases(
    params: BgNbdParams, t: float | Array, x: Array, t_x: Array, T: Array
) -> Array:
    """Expected purchases in the next ``t`` time units given ``(x, t_x, T)`` (the paper's
    equation 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    t = np.asarray(t, dtype=np.float64)
    ha, hb, hc = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ln_hyp = np.log(hyp2f1(ha, hb, hc, z))
        # Euler's transformation where the direct series overflows
        alt = np.log(hyp2f1(hc - ha, hc - hb, hc, z)) + (hc - ha - hb) * np.log1p(-z)
        ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, alt)
        first = (a + b + x - 1) / (a - 1)
        second = -np.expm1(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + T + t)))
        odds = (a / (b + np.maximum(x, 1) - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        expected = first * second / (1 + np.where(x > 0, odds, 0.0))
    # a fit with next to no drop-out (a -> 0, b -> inf) leaves 0 * inf above; its limit is the
    # NBD's (r + x) t / (alpha + T) for a customer who is alive with certainty
    limit = (r + x) * t / (alpha + T)
    return np.asarray(np.where(np.isfinite(expected), expected, limit), dtype=np.float64)
