"""Customer lifetime value: BG/NBD for purchases and P(alive), Gamma-Gamma for their value.

Per identified person the store computes, in one Ibis query, the sufficient statistics over
*purchase days* (all non-return orders of one calendar day count as one purchase, the usual
convention since Fader and Hardie's CDNOW analysis) up to ``as_of``:

- ``repeat_purchases`` ``x``: purchase days after the first;
- ``purchase_span_days`` ``t_x``: days from the first to the last purchase day;
- ``customer_age_days`` ``T``: days from the first purchase day to ``as_of``;
- ``mean_repeat_value`` ``m``: mean value of the repeat purchase days (non-fee lines; NULL
  when ``x = 0``). Returns are left out: they lower RFM's monetary value, not the spend model.

Both models are fitted in Python (weeks as the time unit) and give per person:

- ``expected_purchases``: BG/NBD conditional expected purchases in the next ``horizon_days``;
- ``p_alive``: BG/NBD probability that the person is still a customer at ``as_of``;
- ``expected_value``, the discounted expected value over the horizon::

      E[M | x, m] * sum_k (E[X(t_k)] - E[X(t_(k-1))]) / (1 + d) ** (t_k / 365)

  with ``t_k = min(30 k, horizon_days)`` (30-day steps, the last one shorter), ``t_0 = 0``,
  ``E[X(t)]`` the expected purchases in the next ``t`` days, ``E[M | x, m]`` the Gamma-Gamma
  expected value of a purchase and ``d`` the annual discount rate. With a monthly rate
  ``d_m = (1 + d) ** (30 / 365) - 1`` and a 360-day horizon this is exactly the
  ``customer_lifetime_value`` of the ``lifetimes`` package (12 monthly steps of 30 days).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from surmesure.derive import bgnbd, gammagamma
from surmesure.derive.source import days_between, person_orders
from surmesure.errors import InvalidInput

Array = npt.NDArray[np.float64]

UNIT_DAYS = 7.0
STEP_DAYS = 30
SUMMARY_COLUMNS = (
    "person_id",
    "repeat_purchases",
    "purchase_span_days",
    "customer_age_days",
    "mean_repeat_value",
)


def purchase_days(orders: ir.Table) -> ir.Table:
    """One row per buyer and day with a purchase (returns left out): ``person_id``,
    ``order_day`` and the day's ``value``."""
    purchases = orders.filter(~orders.is_return)
    return purchases.group_by(["person_id", "order_day"]).aggregate(value=purchases.amount.sum())


def summary(backend: Any, as_of: date, orders: ir.Table | None = None) -> ir.Table:
    """The sufficient statistics per buyer (columns ``SUMMARY_COLUMNS``); ``orders`` is
    :func:`person_orders` when already at hand."""
    orders = person_orders(backend, as_of) if orders is None else orders
    days = purchase_days(orders)
    days = days.mutate(first_day=days.order_day.min().over(ibis.window(group_by=days.person_id)))
    per_person = days.group_by("person_id").aggregate(
        purchase_days=days.order_day.count(),
        first_day=days.first_day.max(),
        last_day=days.order_day.max(),
        repeat_value=days.value.sum(where=days.order_day != days.first_day),
    )
    x = per_person.purchase_days - 1
    return per_person.select(
        "person_id",
        repeat_purchases=x,
        purchase_span_days=days_between(per_person.last_day, per_person.first_day),
        customer_age_days=days_between(ibis.date(as_of), per_person.first_day),
        mean_repeat_value=ibis.ifelse(x > 0, per_person.repeat_value / x, ibis.null("float64")),
    )


class ClvModel(BaseModel):
    """Both fitted models; ``gamma_gamma`` is None when it could not be fitted (``note``)."""

    model_config = ConfigDict(frozen=True)

    bgnbd: bgnbd.BgNbdParams
    gamma_gamma: gammagamma.GammaGammaParams | None
    unit_days: float = UNIT_DAYS
    note: str = ""


def _as_float(values: npt.ArrayLike) -> Array:
    return np.asarray(values, dtype=np.float64)


def distinct_rows(
    x: Array, t_x: Array, T: Array
) -> tuple[Array, npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The distinct ``(x, t_x, T)`` rows (shape (k, 3)), each customer's row index and each
    row's customer count. Whole days below 2**21 are packed in one integer key, much faster
    to sort than rows."""
    limit = 2**21
    whole = all(np.all((v >= 0) & (v < limit) & (v == np.floor(v))) for v in (x, t_x, T))
    if not whole:
        rows, inverse, counts = np.unique(
            np.stack([x, t_x, T], axis=1), axis=0, return_inverse=True, return_counts=True
        )
        return rows, inverse.reshape(-1), counts
    key = (x.astype(np.int64) << 42) | (t_x.astype(np.int64) << 21) | T.astype(np.int64)
    keys, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    rows = np.stack([keys >> 42, (keys >> 21) & (limit - 1), keys & (limit - 1)], axis=1)
    return rows.astype(np.float64), inverse.reshape(-1), counts


def fit(
    x: npt.ArrayLike, t_x_days: npt.ArrayLike, T_days: npt.ArrayLike, m: npt.ArrayLike
) -> ClvModel:
    """Fit BG/NBD on every buyer (identical statistics grouped) and Gamma-Gamma on those
    with repeat purchases."""
    xs, txs, Ts = _as_float(x), _as_float(t_x_days), _as_float(T_days)
    rows, _, counts = distinct_rows(xs, txs, Ts)
    frequency = bgnbd.fit(rows[:, 0], rows[:, 1] / UNIT_DAYS, rows[:, 2] / UNIT_DAYS, counts)
    try:
        spend = gammagamma.fit(xs, _as_float(m))
    except InvalidInput as exc:
        return ClvModel(bgnbd=frequency, gamma_gamma=None, note=exc.message)
    note = "" if spend.q > 1 else "Gamma-Gamma q <= 1: the mean purchase value is infinite"
    return ClvModel(bgnbd=frequency, gamma_gamma=spend, note=note)


def horizon_steps(horizon_days: int) -> list[int]:
    """``t_1 < ... < t_K = horizon_days``: 30-day steps, the last one possibly shorter."""
    if horizon_days <= 0:
        raise InvalidInput(
            f"Horizon {horizon_days} days is not positive.",
            hint="use --horizon-days 365 or another positive number",
            field="horizon_days",
        )
    return [
        min(STEP_DAYS * k, horizon_days) for k in range(1, math.ceil(horizon_days / STEP_DAYS) + 1)
    ]


def predict(
    model: ClvModel,
    x: npt.ArrayLike,
    t_x_days: npt.ArrayLike,
    T_days: npt.ArrayLike,
    m: npt.ArrayLike,
    *,
    horizon_days: int = 365,
    discount_rate: float = 0.1,
) -> dict[str, Array]:
    """Per buyer: ``expected_purchases``, ``p_alive`` and ``expected_value`` (NaN when the
    spend model could not be fitted); see the module docstring for the formulas."""
    if discount_rate <= -1:
        raise InvalidInput(
            f"Discount rate {discount_rate} is not above -1.",
            hint="use an annual rate such as 0.1 for 10 %",
            field="discount_rate",
        )
    steps = horizon_steps(horizon_days)
    xs, txs, Ts = _as_float(x), _as_float(t_x_days), _as_float(T_days)
    # every model output depends on (x, t_x, T) only: compute once per distinct triple
    rows, inverse, _ = distinct_rows(xs, txs, Ts)
    ux, utx, uT = rows[:, 0], rows[:, 1] / model.unit_days, rows[:, 2] / model.unit_days
    params = model.bgnbd
    discounted = np.zeros(len(rows))
    before = np.zeros(len(rows))
    for t_k in steps:
        cumulative = bgnbd.expected_purchases(params, t_k / model.unit_days, ux, utx, uT)
        discounted += (cumulative - before) / (1 + discount_rate) ** (t_k / 365)
        before = cumulative
    alive = bgnbd.p_alive(params, ux, utx, uT)
    if model.gamma_gamma is not None and model.gamma_gamma.q > 1:
        spend = gammagamma.expected_value(model.gamma_gamma, xs, _as_float(m))
    else:
        spend = np.full(len(xs), np.nan)
    return {
        "expected_purchases": before[inverse],
        "p_alive": alive[inverse],
        "expected_value": spend * discounted[inverse],
    }
