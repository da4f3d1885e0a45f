"""BG/NBD's P(at least one purchase in the next t) against customers simulated from the model
and, for a new customer, against lifetimes' probability of no purchase."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from surmesure.derive import bgnbd

with warnings.catch_warnings():
    # lifetimes 0.11.3 sets a pandas option that pandas 3 deprecates, on import
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:lifetimes.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:lifetimes.*"),
]

PARAMS = bgnbd.BgNbdParams(
    r=0.8, alpha=5.0, a=0.8, b=2.5, log_likelihood=0.0, customers=0, converged=True
)
OBSERVED = 52.0  # every simulated customer's T, in weeks since the first purchase
AHEAD = 13.0


def _simulate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, t_x)`` at ``OBSERVED`` and whether each customer bought in the ``AHEAD`` weeks
    after it: rate ~ Gamma(r, alpha), drop-out ~ Beta(a, b) after each repeat purchase."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(PARAMS.r, 1 / PARAMS.alpha, n)
    drop = rng.beta(PARAMS.a, PARAMS.b, n)
    x, t_x = np.zeros(n), np.zeros(n)
    bought = np.zeros(n, dtype=bool)
    now = np.zeros(n)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1 / rate[active])
        before = now[active] <= OBSERVED
        inside = active[before]
        x[inside] += 1
        t_x[inside] = now[inside]
        bought[active[~before & (now[active] <= OBSERVED + AHEAD)]] = True
        # past OBSERVED the first purchase settles it; before it, one may drop out
        staying = rng.random(inside.size) >= drop[inside]
        active = inside[staying]
    return x, t_x, bought


def test_the_probability_matches_simulated_customers() -> None:
    x, t_x, bought = _simulate(200_000, seed=3)
    big_t = np.full_like(x, OBSERVED)
    predicted = bgnbd.p_purchase(PARAMS, AHEAD, x, t_x, big_t)
    assert ((predicted > 0) & (predicted < 1)).all()
    groups = {
        "no repeat": x == 0,
        "one repeat, early": (x == 1) & (t_x < OBSERVED / 2),
        "one repeat, late": (x == 1) & (t_x >= OBSERVED / 2),
        "2-4 repeats, early": (x >= 2) & (x <= 4) & (t_x < 0.75 * OBSERVED),
        "2-4 repeats, late": (x >= 2) & (x <= 4) & (t_x >= 0.75 * OBSERVED),
        "5+ repeats": x >= 5,
    }
    for name, group in groups.items():
        share, expected = bought[group].mean(), predicted[group].mean()
        error = np.sqrt(expected * (1 - expected) / group.sum())
        assert group.sum() > 2_000, name
        assert abs(share - expected) < 4 * error, (name, share, expected)
    # the groups differ well beyond that noise: the test tells a wrong formula apart
    assert predicted[groups["one repeat, early"]].mean() < 0.5 * bought[x >= 5].mean()


def test_a_new_customer_matches_lifetimes_probability_of_no_purchase() -> None:
    peer = BetaGeoFitter()
    peer.params_ = {"r": PARAMS.r, "alpha": PARAMS.alpha, "a": PARAMS.a, "b": PARAMS.b}
    zero = np.zeros(1)
    for weeks in (1.0, 13.0, 52.0):
        none = float(peer.probability_of_n_purchases_up_to_time(weeks, 0))
        ours = bgnbd.p_purchase(PARAMS, weeks, zero, zero, zero)[0]
        assert ours == pytest.approx(1 - none, rel=1e-12)
