"""Gamma-Gamma: how much a customer spends per purchase (pure numerics).

Fader, Hardie and Lee (2005), "RFM and CLV: using iso-value curves for customer base
analysis", Journal of Marketing Research 42(4). The value of each purchase is Gamma(p, nu) with
nu ~ Gamma(q, v) across customers, independent of purchase frequency. Only customers with
repeat purchases (``x > 0``) are fitted, on ``x`` and ``m``, the mean value of those repeat
purchases.

Conditional expected value per purchase: ``p (v + x m) / (p x + q - 1)``, a weighted mean of
the population mean ``p v / (q - 1)`` and the customer's own ``m``; defined for ``q > 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from surmesure.errors import InvalidInput

Array = npt.NDArray[np.float64]


class GammaGammaParams(BaseModel):
    """Fitted Gamma-Gamma parameters, the mean log-likelihood and how the fit went."""

    model_config = ConfigDict(frozen=True)

    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int
    converged: bool
    message: str = ""

    @property
    def population_mean(self) -> float:
        """Mean value of a purchase across customers; infinite when ``q <= 1``."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")


def log_likelihood(params: Array, x: Array, m: Array) -> tuple[Array, Array]:
    """Per-customer log-likelihood and its gradient in log-parameters (shape (3, n))."""
    p, q, v = params
    px = p * x
    log_xm_v = np.log(x * m + v)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_xm_v
    )
    psi_pq = digamma(px + q)
    d_p = x * (psi_pq - digamma(px) + np.log(m) + np.log(x) - log_xm_v)
    d_q = psi_pq - digamma(q) + np.log(v) - log_xm_v
    d_v = q / v - (px + q) / (x * m + v)
    return ll, np.stack([d_p * p, d_q * q, d_v * v])


@dataclass(frozen=True)
class _Statistics:
    """The repeat customers, with the log-likelihood's terms free of ``v`` summed once."""

    x: Array
    xm: Array  # x * m
    x_values: Array
    x_count: Array
    x_log_m: float
    log_m: float
    x_log_x: float

    @classmethod
    def of(cls, x: Array, m: Array) -> _Statistics:
        x_values, x_count = np.unique(x, return_counts=True)
        log_m = np.log(m)
        return cls(
            x=x,
            xm=x * m,
            x_values=x_values,
            x_count=x_count.astype(np.float64),
            x_log_m=float(x @ log_m),
            log_m=float(log_m.sum()),
            x_log_x=float(x @ np.log(x)),
        )


def _objective(log_params: Array, s: _Statistics) -> tuple[float, Array]:
    """Minus the mean log-likelihood and its gradient in log-parameters: the sum of
    :func:`log_likelihood` over customers."""
    p, q, v = np.exp(log_params)
    n = float(len(s.x))
    px = p * s.x_values
    log_xm_v = np.log(s.xm + v)
    s_log = float(log_xm_v.sum())
    s_xlog = float(s.x @ log_xm_v)
    ll = (
        s.x_count @ (gammaln(px + q) - gammaln(px))
        - n * gammaln(q)
        + n * q * np.log(v)
        + p * s.x_log_m
        - s.log_m
        + p * s.x_log_x
        - p * s_xlog
        - q * s_log
    )
    psi_pq = digamma(px + q)
    d_p = (s.x_count * s.x_values) @ (psi_pq - digamma(px)) + s.x_log_m + s.x_log_x - s_xlog
    d_q = s.x_count @ psi_pq - n * digamma(q) + n * np.log(v) - s_log
    d_v = n * q / v - float(((p * s.x + q) / (s.xm + v)).sum())
    grad = np.array([d_p * p, d_q * q, d_v * v])
    return -float(ll) / n, -grad / n


def fit(x: npt.ArrayLike, m: npt.ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters on customers with ``x > 0`` repeat purchases
    of mean value ``m > 0``; other rows are left out."""
    xs = np.asarray(x, dtype=np.float64)
    ms = np.asarray(m, dtype=np.float64)
    keep = (xs > 0) & (ms > 0) & np.isfinite(ms)
    xs, ms = xs[keep], ms[keep]
    if xs.size < 2:
        raise InvalidInput(
            f"Gamma-Gamma needs customers with repeat purchases of positive value; "
            f"found {xs.size}.",
            hint="derive CLV on a longer order history",
        )
    result = minimize(
        _objective,
        np.zeros(3),
        args=(_Statistics.of(xs, ms),),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-7},
    )
    p, q, v = np.exp(result.x)
    return GammaGammaParams(
        p=float(p),
        q=float(q),
        v=float(v),
        log_likelihood=-float(result.fun),
        customers=int(xs.size),
        converged=bool(result.success or np.max(np.abs(result.jac)) < 1e-6),
        message=str(result.message),
    )


def expected_value(params: GammaGammaParams, x: Array, m: Array) -> Array:
    """Expected value of a customer's next purchases given ``x`` repeat purchases of mean
    ``m``; the population mean for customers without repeat purchases (``x = 0``)."""
    p, q, v = params.p, params.q, params.v
    own = np.where(x > 0, np.nan_to_num(m), 0.0)
    return np.asarray(p * (v + x * own) / (p * x + q - 1), dtype=np.float64)
