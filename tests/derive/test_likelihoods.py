"""The fitted objectives against the per-customer log-likelihoods, and their gradients."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import approx_fprime
from scipy.special import gammaln
from scipy.stats import gamma as stats_gamma

from surmesure.derive import bgnbd, clv, gammagamma

RNG = np.random.default_rng(7)
N = 400
X = RNG.integers(0, 9, N).astype(float)
T = RNG.integers(1, 60, N).astype(float)
T_X = np.where(X > 0, np.floor(RNG.random(N) * T), 0.0)
M = np.where(X > 0, RNG.gamma(3.0, 10.0, N), 0.0)


def _bgnbd_closed_form(params: np.ndarray, x: float, t_x: float, big_t: float) -> float:
    # the paper's equation 6, written out with Beta and Gamma functions
    r, alpha, a, b = params

    def log_beta(p: float, q: float) -> float:
        return float(gammaln(p) + gammaln(q) - gammaln(p + q))

    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    first = log_beta(a, b + x) - log_beta(a, b) - (r + x) * np.log(alpha + big_t)
    if x == 0:
        return float(common + first)
    second = log_beta(a + 1, b + x - 1) - log_beta(a, b) - (r + x) * np.log(alpha + t_x)
    return float(common + np.logaddexp(first, second))


def test_bgnbd_objective_is_the_mean_per_customer_likelihood() -> None:
    params = np.array([0.6, 5.0, 0.9, 2.5])
    per_customer, _ = bgnbd.log_likelihood(params, X, T_X, T)
    closed = [_bgnbd_closed_form(params, x, t, big) for x, t, big in zip(X, T_X, T, strict=True)]
    assert np.allclose(per_customer, closed, rtol=1e-12)
    stats = bgnbd._statistics(X, T_X, T, np.ones(N))
    value, grad = bgnbd._objective(np.log(params), stats)
    assert value == pytest.approx(-per_customer.mean(), rel=1e-12)
    numeric = approx_fprime(np.log(params), lambda p: bgnbd._objective(p, stats)[0], 1e-7)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_bgnbd_weights_equal_repeated_rows() -> None:
    rows, inverse, counts = clv.distinct_rows(X, T_X, T)
    assert counts.sum() == N and len(rows) < N
    assert np.array_equal(rows[inverse], np.stack([X, T_X, T], axis=1))
    grouped = bgnbd.fit(rows[:, 0], rows[:, 1], rows[:, 2], counts)
    plain = bgnbd.fit(X, T_X, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(grouped, name) == pytest.approx(getattr(plain, name), rel=1e-6)


def test_distinct_rows_of_fractions_fall_back_to_row_sort() -> None:
    rows, inverse, counts = clv.distinct_rows(X, T_X / 7, T / 7)
    assert np.array_equal(rows[inverse], np.stack([X, T_X / 7, T / 7], axis=1))
    assert counts.sum() == N


def test_gamma_gamma_objective_is_the_mean_per_customer_likelihood() -> None:
    params = np.array([4.0, 3.0, 12.0])
    keep = X > 0
    x, m = X[keep], M[keep]
    per_customer, _ = gammagamma.log_likelihood(params, x, m)
    p, q, v = params
    # the mean of x purchases Gamma(p, nu) has density x Gamma(px, x nu)(x m); integrate it
    # numerically over nu ~ Gamma(q, rate v)
    closed = []
    for xi, mi in zip(x[:5], m[:5], strict=True):
        density = quad(
            lambda nu, xi=xi, mi=mi: (
                xi
                * stats_gamma.pdf(xi * mi, p * xi, scale=1 / nu)
                * stats_gamma.pdf(nu, q, scale=1 / v)
            ),
            0,
            np.inf,
            epsabs=0,
            epsrel=1e-11,
            limit=200,
        )[0]
        closed.append(np.log(density))
    assert np.allclose(per_customer[:5], closed, rtol=1e-7)
    stats = gammagamma._Statistics.of(x, m)
    value, grad = gammagamma._objective(np.log(params), stats)
    assert value == pytest.approx(-per_customer.mean(), rel=1e-12)
    numeric = approx_fprime(np.log(params), lambda p: gammagamma._objective(p, stats)[0], 1e-7)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_bad_statistics_are_refused() -> None:
    from surmesure.errors import InvalidInput

    with pytest.raises(InvalidInput, match="t_x <= T"):
        bgnbd.fit([1.0], [5.0], [3.0])
    with pytest.raises(InvalidInput, match="No customer"):
        bgnbd.fit([], [], [])
    with pytest.raises(InvalidInput, match="found 1"):
        gammagamma.fit([0.0, 2.0], [0.0, 10.0])
