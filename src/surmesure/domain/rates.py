"""Exchange rates into the store's currency as people write them: ``GBP=1.17`` means one
pound is worth 1.17 of the store's currency. Pure; read by the ``--rate`` option of an
import and by the ``SURMESURE_RATES`` setting (``GBP=1.17,USD=0.92``)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

CODE = re.compile(r"^[A-Z]{3}$")
LOWEST, HIGHEST = 1e-9, 1e9
"""The rates taken: any two currencies in use are within this of each other, and a rate
beyond it (``GBP=1e308``) is a typing error that would turn amounts into infinities or
zeros."""


def parse_rates(texts: Iterable[str]) -> dict[str, float]:
    """``["GBP=1.17"]`` -> ``{"GBP": 1.17}``; a code of three capitals and a rate from
    :data:`LOWEST` to :data:`HIGHEST`, else :class:`ValueError` naming the text at fault."""
    rates: dict[str, float] = {}
    for text in texts:
        code, _, number = text.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not CODE.match(code.strip()):
            raise ValueError(f"{text!r} is not CUR=RATE (CUR: three capital letters)")
        if not LOWEST <= value <= HIGHEST:  # (NaN is neither)
            raise ValueError(
                f"{text!r} is not CUR=RATE (RATE: a number from {LOWEST:g} to {HIGHEST:g})"
            )
        rates[code.strip()] = value
    return rates
