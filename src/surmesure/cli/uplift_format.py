"""Money figures and their intervals as the uplift commands print them."""

from __future__ import annotations

import math

from surmesure.learn.uplift import Interval


def money(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.2f}"


def interval_text(i: Interval) -> str:
    return f"{money(i.estimate)} [{money(i.low)}, {money(i.high)}]"


def interval_json(i: Interval) -> dict[str, float]:
    return {"estimate": i.estimate, "low": i.low, "high": i.high}
