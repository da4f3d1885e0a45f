"""The sandbox templates render in: authors are marketers, not programmers.

Jinja2's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`, tightened:

- attributes are read only on plain data (text, numbers, dates, lists, mappings); anything
  else, and every name starting with ``_``, is refused;
- ``range()`` is capped at :data:`MAX_RANGE`, and every ``for`` loop of a render counts
  against :data:`MAX_ITERATIONS`;
- a render has a time limit (checked at each loop step and each call);
- ``*`` and ``**`` cannot build huge values.

Filters: ``money(currency)``, ``number(digits)``, ``percent``, ``date(format)``,
``datetime(format)``, ``time(format)``, formatted with Babel in the render's locale (``fr``,
``en``, any CLDR locale). A refusal or a failure raises :class:`TemplateError`, naming the
template and the line.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale, dates, numbers
from jinja2 import StrictUndefined, nodes, pass_context
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from surmesure.errors import InvalidInput

MAX_RANGE = 1000
MAX_ITERATIONS = 10_000
MAX_SIZE = 100_000
DEFAULT_TIME_LIMIT_S = 0.25
SAFE_TYPES = (str, int, float, bool, Decimal, date, datetime, dict, list, tuple)


class TemplateError(InvalidInput):
    """A template that cannot compile or render; names the template and the line."""

    def __init__(self, template: str, line: int | None, reason: str) -> None:
        where = f"template {template!r}" + (f", line {line}" if line else "")
        super().__init__(
            f"{where}: {reason}",
            hint="templates may read the given values (person, context, offers, products), "
            f"loop at most {MAX_ITERATIONS:,} times and use range() up to {MAX_RANGE:,}",
            field=template,
        )
        self.template = template
        self.line = line
        self.reason = reason


@dataclass
class _Budget:
    deadline: float
    iterations: int
    locale: Locale


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


def _check(budget: _Budget | None) -> None:
    if budget is not None and time.perf_counter() > budget.deadline:
        raise SecurityError("the render took longer than its time limit")


@pass_context
def _guard(_ctx: Any, items: Iterable[Any]) -> Iterator[Any]:
    budget = _budget.get()
    for item in items:
        if budget is not None:
            budget.iterations -= 1
            if budget.iterations < 0:
                raise SecurityError(f"loops ran more than {MAX_ITERATIONS:,} times")
            _check(budget)
        yield item


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SecurityError(f"range() of {len(r):,} items; at most {MAX_RANGE:,}")
    return r


@lru_cache(maxsize=64)
def locale_of(name: str) -> Locale:
    try:
        return Locale.parse(name)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"Locale {name!r} is not known.", hint="use e.g. fr, en, fr_FR, en_GB", field="locale"
        ) from exc


# filters take the context so that Jinja does not fold them at compile time: the locale is the
# render's, not the compiler's
def _locale() -> Locale:
    budget = _budget.get()
    return budget.locale if budget is not None else locale_of("fr")


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


def _hashable(value: Any) -> bool:
    return isinstance(value, int | float | Decimal | str)


@pass_context
def _money(_ctx: Any, value: Any, currency: str = "EUR") -> str:
    if _hashable(value) and isinstance(currency, str):
        return _format_money(value, currency, _locale())
    return str(numbers.format_currency(value, currency, locale=_locale()))


@pass_context
def _number(_ctx: Any, value: Any, digits: int | None = None) -> str:
    if _hashable(value) and (digits is None or isinstance(digits, int)):
        return _format_number(value, digits, _locale())
    return str(numbers.format_decimal(value, locale=_locale()))


@pass_context
def _percent(_ctx: Any, value: Any) -> str:
    return str(numbers.format_percent(value, locale=_locale()))


@pass_context
def _date(_ctx: Any, value: Any, format: str = "long") -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.date()
    return str(dates.format_date(value, format=format, locale=_locale()))


@pass_context
def _datetime(_ctx: Any, value: Any, format: str = "medium") -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(dates.format_datetime(value, format=format, locale=_locale()))


@pass_context
def _time(_ctx: Any, value: Any, format: str = "short") -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(dates.format_time(value, format=format, locale=_locale()))


class Sandbox(ImmutableSandboxedEnvironment):
    """The environment templates compile in. Loops are wrapped at parse time."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.globals = {"range": _range}
        self.filters.update(
            {
                "_loop_guard": _guard,
                "money": _money,
                "number": _number,
                "percent": _percent,
                "date": _date,
                "datetime": _datetime,
                "time": _time,
            }
        )

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, "_loop_guard", [], [], None, None, lineno=loop.lineno
            )
        return tree

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not isinstance(obj, SAFE_TYPES):
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check(_budget.get())
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for a, b in ((left, right), (right, left)):
                if (
                    isinstance(a, str | list | tuple)
                    and isinstance(b, int)
                    and len(a) * b > MAX_SIZE
                ):
                    raise SecurityError(f"a value longer than {MAX_SIZE:,} items")
        return super().call_binop(context, operator, left, right)


SANDBOX = Sandbox()


def compile_text(source: str, name: str) -> JinjaTemplate:
    """Compile ``source`` as the template ``name``; :class:`TemplateError` when it does not
    parse."""
    try:
        code = SANDBOX.compile(source, name=name, filename=name)
    except TemplateSyntaxError as exc:
        raise TemplateError(name, exc.lineno, exc.message or "syntax error") from None
    return SANDBOX.template_class.from_code(SANDBOX, code, SANDBOX.make_globals(None), None)


def render_text(
    compiled: JinjaTemplate,
    values: dict[str, Any],
    *,
    locale: str = "fr",
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> str:
    """Render ``compiled`` with ``values`` in ``locale`` within the limits of the sandbox."""
    token = _budget.set(
        _Budget(time.perf_counter() + time_limit_s, MAX_ITERATIONS, locale_of(locale))
    )
    try:
        return compiled.render(values)
    except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError) as exc:
        name = compiled.name or "<template>"
        raise TemplateError(name, _line_of(exc, name), str(exc)) from None
    except RecursionError:
        name = compiled.name or "<template>"
        raise TemplateError(name, None, "macros call themselves too deeply") from None
    finally:
        _budget.reset(token)


def _line_of(exc: BaseException, filename: str) -> int | None:
    """The template line the error happened on (Jinja maps frames back to template lines)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
