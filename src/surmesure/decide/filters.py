"""Filters formatted with Babel in the render's locale (``fr``, ``en``, any CLDR locale).

``money(currency)``, ``number(digits)``, ``percent``, ``date(format)``, ``datetime(format)``,
``time(format)``. They take the context so that Jinja does not fold them at compile time: the
locale is the render's, not the compiler's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale, dates, numbers
from jinja2 import pass_context

from surmesure.decide import limits
from surmesure.errors import InvalidInput

MAX_DIGITS = 20
MAX_PATTERN = 64


@lru_cache(maxsize=64)
def locale_of(name: str) -> Locale:
    """The Babel locale ``name``, its number and date data loaded (tens of milliseconds, once:
    a template's locale is loaded with the template, not in its first render)."""
    try:
        locale = Locale.parse(name)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"Locale {name!r} is not known.", hint="use e.g. fr, en, fr_FR, en_GB", field="locale"
        ) from exc
    numbers.format_currency(1.5, "EUR", locale=locale)
    numbers.format_percent(0.5, locale=locale)
    dates.format_datetime(datetime(2000, 1, 1), locale=locale)
    return locale


def _locale() -> Locale:
    render = limits.current.get()
    return render.locale if render is not None else locale_of("fr")


# prices repeat across people: each (value, currency, locale) is formatted once
@lru_cache(maxsize=16_384)
def _format_money(value: Any, currency: str, locale: Locale) -> str:
    return str(numbers.format_currency(value, currency, locale=locale))


@lru_cache(maxsize=16_384)
def _format_number(value: Any, digits: int | None, locale: Locale) -> str:
    if digits is None:
        return str(numbers.format_decimal(value, locale=locale))
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return str(numbers.format_decimal(value, format=pattern, locale=locale))


def _short(argument: Any, what: str) -> None:
    # a Babel pattern is read character by character and a currency code is printed as given:
    # both are short, and a long one is a template error, not a slow render
    if isinstance(argument, str) and len(argument) > MAX_PATTERN:
        raise limits.LimitExceeded(
            "text", f"a {what} of {len(argument):,} characters; at most {MAX_PATTERN}"
        )


def _hashable(value: Any) -> bool:
    return isinstance(value, int | float | Decimal | str)


@pass_context
def money(_ctx: Any, value: Any, currency: str = "EUR") -> str:
    if value is None:  # an amount not known (a product the catalog no longer has): nothing
        return ""
    if _hashable(value) and type(currency) is str and len(currency) <= MAX_PATTERN:
        return _format_money(value, currency, _locale())
    _short(currency, "currency")
    return str(numbers.format_currency(value, currency, locale=_locale()))


@pass_context
def number(_ctx: Any, value: Any, digits: int | None = None) -> str:
    if isinstance(digits, int) and not 0 <= digits <= MAX_DIGITS:
        raise limits.LimitExceeded("text", f"number({digits:,}); digits go from 0 to {MAX_DIGITS}")
    if value is None:
        return ""
    if _hashable(value) and (digits is None or isinstance(digits, int)):
        return _format_number(value, digits, _locale())
    return str(numbers.format_decimal(value, locale=_locale()))


@pass_context
def percent(_ctx: Any, value: Any) -> str:
    if value is None:
        return ""
    return str(numbers.format_percent(value, locale=_locale()))


@pass_context
def date(_ctx: Any, value: Any, format: str = "long") -> str:
    _short(format, "date format")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.date()
    return str(dates.format_date(value, format=format, locale=_locale()))


@pass_context
def datetime_(_ctx: Any, value: Any, format: str = "medium") -> str:
    _short(format, "date format")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(dates.format_datetime(value, format=format, locale=_locale()))


@pass_context
def time(_ctx: Any, value: Any, format: str = "short") -> str:
    _short(format, "time format")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(dates.format_time(value, format=format, locale=_locale()))


FILTERS = {
    "money": money,
    "number": number,
    "percent": percent,
    "date": date,
    "datetime": datetime_,
    "time": time,
}
