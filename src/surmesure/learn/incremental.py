"""What a campaign added over its control group: incremental conversion, revenue and ROI.

Inputs are sufficient statistics of the treated people and of the control group (people held
out, who received nothing): conversion as a 0/1 metric, revenue per person as a summed one.

- Incremental conversion per person: the difference of the two conversion rates, with the
  Wald interval and two-sided z-test of two independent proportions (unpooled variance
  p(1 - p) / n on each side; statsmodels' ``confint_proportions_2indep(method="wald")``).
- Incremental revenue per person: the difference of mean revenue per person, with Welch's
  t interval and test (unequal variances, Welch-Satterthwaite degrees of freedom; SciPy's
  ``ttest_ind(equal_var=False)``).
- Totals: each per-person increment times the treated people (the campaign's whole effect,
  had everyone treated been compared with their own control), with the interval scaled alike.
- ROI = (incremental revenue per person x treated - cost) / cost, a linear map of the revenue
  increment, so its interval is the revenue interval mapped the same way. Undefined (NaN, with
  a reason) without a cost.

Undefined statistics (an empty side, no variation) are NaN with a ``reason``; they never raise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from surmesure.learn.frequentist import Lift, compare, undefined_lift
from surmesure.learn.moments import Moments

NO_COST = "the campaign has no cost for these messages (set `costs:` in the document)"


@dataclass(frozen=True, slots=True)
class Increment:
    """Treated against control, per person and in total (see the module)."""

    treated_n: int
    control_n: int
    conversion: Lift
    """Difference of conversion rates (treated - control), per person."""
    revenue: Lift
    """Difference of revenue per person (treated - control)."""
    conversions: Lift
    """Incremental conversions: ``conversion`` x treated people."""
    revenue_total: Lift
    """Incremental revenue: ``revenue`` x treated people."""
    cost: float
    roi: Lift
    """(revenue_total - cost) / cost; its p-value is the revenue test's."""


def _scaled(lift: Lift, factor: float, shift: float = 0.0) -> Lift:
    """``lift`` mapped by x -> x * factor + shift (factor > 0): the same test, new units."""
    if lift.reason is not None or math.isnan(lift.estimate):
        return lift
    return Lift(
        lift.estimate * factor + shift,
        lift.std_error * factor,
        lift.ci_lower * factor + shift,
        lift.ci_upper * factor + shift,
        lift.p_value,
    )


def increment(
    control_conversion: Moments,
    treated_conversion: Moments,
    control_revenue: Moments,
    treated_revenue: Moments,
    cost: float,
    alpha: float = 0.05,
) -> Increment:
    """The increments of treated over control, with ``1 - alpha`` intervals (see the module).
    Conversion moments must be ``binomial``, revenue moments ``mean``; ``cost`` is the cost of
    the treated people's messages, in the revenue's currency."""
    conversion = compare(control_conversion, treated_conversion, alpha, "z").absolute
    revenue = compare(control_revenue, treated_revenue, alpha, "t").absolute
    n = treated_conversion.n
    total = _scaled(revenue, float(n))
    no_cost = undefined_lift(total.reason or NO_COST)
    roi = _scaled(total, 1.0 / cost, -1.0) if cost > 0 else no_cost
    return Increment(
        treated_n=n,
        control_n=control_conversion.n,
        conversion=conversion,
        revenue=revenue,
        conversions=_scaled(conversion, float(n)),
        revenue_total=total,
        cost=cost,
        roi=roi,
    )
