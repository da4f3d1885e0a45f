"""Exchange rates into the store's currency as people write them: ``GBP=1.17`` means one
pound is worth 1.17 of the store's currency. Pure; read by the ``--rate`` option of an
import and by the ``SURMESURE_RATES`` setting (``GBP=1.17,USD=0.92``)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

CODE = re.compile(r"^[A-Z]{3}$")


def parse_rates(texts: Iterable[str]) -> dict[str, float]:
    """``["GBP=1.17"]`` -> ``{"GBP": 1.17}``; a code of three capitals and a positive rate,
    else :class:`ValueError` naming the text at fault."""
    rates: dict[str, float] = {}
    for text in texts:
        code, _, number = text.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not (CODE.match(code.strip()) and math.isfinite(value) and value > 0):
            raise ValueError(f"{text!r} is not CUR=RATE")
        rates[code.strip()] = value
    return rates
