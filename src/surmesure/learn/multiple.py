"""Multiple-testing correction across cells (segments × variants × metrics)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from surmesure.errors import InvalidInput


def benjamini_hochberg(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order.

    NaN p-values (undefined cells) stay NaN and do not count as tests.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise InvalidInput("p-values must be a flat list.", field="p_values", hint="pass 1-D")
    defined = ~np.isnan(p)
    if np.any((p[defined] < 0) | (p[defined] > 1)):
        raise InvalidInput(
            "A p-value lies outside [0, 1].", field="p_values", hint="pass probabilities"
        )
    out = np.full(p.shape, np.nan)
    q = p[defined]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q)
    scaled = q[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    out[defined] = result
    return out
