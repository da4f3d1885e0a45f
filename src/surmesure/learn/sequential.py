"""Always-valid inference: asymptotic confidence sequences (Waudby-Smith et al., 2023).

The interval and p-value stay valid however often results are looked at, so a team can read an
experiment every day and stop when it is clear, without inflating false positives. This is the
construction GrowthBook uses (gbstats ``SequentialTwoSidedTTest``): a normal mixture with
precision ρ² tuned so the interval is tightest near ``tuning`` total people (eq. 9, 155 and 161
of arXiv:2103.06476v7).
"""

from __future__ import annotations

import math

from surmesure.errors import InvalidInput
from surmesure.learn.effects import Effect, Scale, arms, effect
from surmesure.learn.frequentist import Comparison, Lift, check_alpha, undefined_lift
from surmesure.learn.moments import Moments

DEFAULT_TUNING = 5000.0


def mixture_rho(alpha: float, tuning: float) -> float:
    """ρ of the normal mixture, optimal for a sample of ``tuning`` people (eq. 161)."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def sequential_lift(e: Effect, total_n: int, alpha: float, tuning: float) -> Lift:
    """Confidence-sequence interval and always-valid p-value of ``e`` after ``total_n`` people."""
    if e.reason is not None:
        return undefined_lift(e.reason)
    rho2 = mixture_rho(alpha, tuning) ** 2
    n = float(total_n)
    s2 = e.variance * n
    tr2p1 = n * rho2 + 1
    width = math.sqrt(s2) * math.sqrt(
        2 * tr2p1 * math.log(math.sqrt(tr2p1) / alpha) / (n * n * rho2)
    )
    st2 = e.estimate**2 * n / e.variance
    log_evalue = rho2 * st2 / (2 * tr2p1) - 0.5 * math.log(tr2p1)
    p_value = math.exp(-log_evalue) if log_evalue > 0 else 1.0
    return Lift(e.estimate, e.std_error, e.estimate - width, e.estimate + width, p_value)


def compare_sequential(
    control: Moments,
    treatment: Moments,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
    cuped: bool = True,
) -> Comparison:
    """Like :func:`surmesure.learn.frequentist.compare`, with always-valid intervals."""
    check_alpha(alpha)
    if not tuning > 0:
        raise InvalidInput(
            f"Sequential 'tuning' has value {tuning!r}.",
            field="tuning",
            hint="pass the expected total sample size, a positive number (default 5000)",
        )
    a, b, theta = arms(control, treatment, cuped)
    total = control.n + treatment.n
    lifts: dict[Scale, Lift] = {
        s: sequential_lift(effect(a, b, s), total, alpha, tuning) for s in ("absolute", "relative")
    }
    return Comparison(
        method="sequential",
        control_n=control.n,
        treatment_n=treatment.n,
        control_mean=control.mean,
        treatment_mean=treatment.mean,
        absolute=lifts["absolute"],
        relative=lifts["relative"],
        alpha=alpha,
        dof=math.inf,
        theta=theta,
    )
