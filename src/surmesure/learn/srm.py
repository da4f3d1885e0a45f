"""Sample-ratio mismatch: do the observed variant sizes fit the designed split?

A chi-squared goodness-of-fit test of the counts against the weights. A tiny p-value means the
assignment or the logging is broken, so no effect estimate of the experiment can be trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from surmesure.errors import InvalidInput

DEFAULT_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SampleRatioCheck:
    """Chi-squared statistic, p-value, and ``mismatch`` when p < ``threshold``.

    ``reason`` is set (and p is 1) when nobody was observed.
    """

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    threshold: float
    mismatch: bool
    reason: str | None = None


def sample_ratio_check(
    counts: Sequence[int],
    weights: Sequence[float] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> SampleRatioCheck:
    """Test ``counts`` (people per variant) against ``weights`` (equal split when None)."""
    observed = np.asarray(counts, dtype=np.float64)
    w = np.ones_like(observed) if weights is None else np.asarray(weights, dtype=np.float64)
    if observed.ndim != 1 or observed.size < 2:
        raise InvalidInput(
            "A sample-ratio check needs the counts of at least two variants.",
            field="counts",
            hint="pass one count per variant",
        )
    if w.shape != observed.shape:
        raise InvalidInput(
            f"{w.size} weights given for {observed.size} variants.",
            field="weights",
            hint="pass one weight per variant",
        )
    if np.any(observed < 0) or np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise InvalidInput(
            "Counts must be >= 0 and weights > 0.",
            field="weights" if np.any(w <= 0) else "counts",
            hint="drop variants with no traffic planned from the check",
        )
    total = float(observed.sum())
    obs = tuple(int(c) for c in counts)
    if total == 0:
        zeros = tuple(0.0 for _ in obs)
        return SampleRatioCheck(obs, zeros, 0.0, 1.0, threshold, False, "no people observed")
    expected = w / w.sum() * total
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    p_value = float(stats.chi2.sf(chi2, observed.size - 1))
    return SampleRatioCheck(
        obs, tuple(float(e) for e in expected), chi2, p_value, threshold, p_value < threshold
    )
