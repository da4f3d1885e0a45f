"""Amounts as people read them: with their currency, formatted by Babel for a locale."""

from __future__ import annotations

from babel import numbers


def money(amount: float | None, currency: str | None, locale: str = "en") -> str:
    """``1234.5, "EUR"`` -> ``€1,234.50`` (locale ``en``); "n/a" for no amount, and a plain
    number when the amounts have no known currency."""
    if amount is None:
        return "n/a"
    if currency is None:
        return f"{amount:,.2f}"
    return str(numbers.format_currency(amount, currency, locale=locale))
