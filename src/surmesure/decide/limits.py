"""The size limits of a template render: every value a template makes is bounded.

A render may be stopped between two operations (its time limit is checked at each loop step,
call, operator and filter), never inside one: a single C-level operation on huge values (a
power of a power, a padding width of 1.5 billion) cannot be interrupted. So each operation a
template performs is kept small instead:

- a string is at most :data:`MAX_TEXT` characters;
- a list, tuple, dict or set holds at most :data:`MAX_ITEMS` items, counted through nesting,
  whose strings hold at most :data:`MAX_TEXT` characters together (so printing it is bounded);
  an iterator (``|map``, ``|select``...) yields at most as much, in total;
- an integer is at most :data:`MAX_INT_BITS` bits (``10 ** 77`` fits, ``10 ** 78`` does not);
- a render prints at most :data:`MAX_OUTPUT` characters, counting what macros, ``{% set %}``
  and ``{% filter %}`` blocks print as well as what reaches the result;
- a template text is at most :data:`~surmesure.domain.templates.MAX_SOURCE` characters.

Operations that could build more than a limit from small inputs (``*``, ``**``, ``%``, padding
and format widths, ``replace``, ``join``, ``indent``, ``wordwrap``, ``batch``...) are refused
*before* they run, from their arguments; the others are checked on their result (:func:`fit`).
A refusal is a :class:`LimitExceeded` naming the limit.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import wraps
from typing import Any

from babel import Locale
from jinja2.exceptions import SecurityError
from jinja2.utils import _PassArg

MAX_TEXT = 100_000
MAX_ITEMS = 10_000
MAX_INT_BITS = 256
MAX_OUTPUT = 1_000_000
MAX_RANGE = 1_000
MAX_ITERATIONS = 10_000
#: the longest text ``wordwrap`` wraps
MAX_WRAPPED = 20_000
#: how often a render off the event loop lets other threads take the interpreter
PAUSE_EVERY_S = 0.001

_CONTAINERS = (list, tuple, dict, set, frozenset)


class LimitExceeded(SecurityError):
    """A render went past one of the limits; ``limit`` names it (``text``, ``items``,
    ``integer``, ``output``, ``iterations``, ``range``, ``time``)."""

    def __init__(self, limit: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.line = line


class Render:
    """What one render may still spend, and its locale. (A plain class with slots: one is made
    per render, on the hot path.)"""

    __slots__ = ("deadline", "iterations", "locale", "on_loop", "output", "pause_at")

    def __init__(self, deadline: float, locale: Locale, on_loop: bool, pause_at: float) -> None:
        #: the ``time.perf_counter()`` value the render must end by
        self.deadline = deadline
        self.iterations = MAX_ITERATIONS
        #: what macros and blocks may still print (see :func:`spend`)
        self.output = MAX_OUTPUT
        self.locale = locale
        #: the deadline is the one of a render on the server's event loop, shorter than its limit
        self.on_loop = on_loop
        #: when the render next lets other threads run: a long render in a thread would
        #: otherwise hold the interpreter for Python's switch interval (5 ms) each time the event
        #: loop thread asks for it (``math.inf``: never, for a render on the loop itself)
        self.pause_at = pause_at


current: contextvars.ContextVar[Render | None] = contextvars.ContextVar("render", default=None)


def check_time() -> None:
    """:class:`LimitExceeded` once the current render is past its deadline."""
    render = current.get()
    if render is not None:
        _tick(render)


def _tick(render: Render) -> None:
    now = time.perf_counter()
    if now > render.pause_at:
        time.sleep(0)  # releases the interpreter lock to a waiting thread
        render.pause_at = now + PAUSE_EVERY_S
    if now > render.deadline:
        raise LimitExceeded("time", "the render took longer than its time limit")


def iterate(items: Any) -> Iterator[Any]:
    """``items``, counting each step against the render's loop budget and time limit."""
    render = current.get()
    for item in items:
        if render is not None:
            render.iterations -= 1
            if render.iterations < 0:
                raise LimitExceeded("iterations", f"loops ran more than {MAX_ITERATIONS:,} times")
            now = time.perf_counter()  # _tick, inlined: this runs at every step of every loop
            if now > render.pause_at:
                time.sleep(0)
                render.pause_at = now + PAUSE_EVERY_S
            if now > render.deadline:
                raise LimitExceeded("time", "the render took longer than its time limit")
        yield item


def spend(printed: int) -> None:
    """Count ``printed`` characters against the render's output budget."""
    render = current.get()
    if render is not None:
        render.output -= printed
        if render.output < 0:
            raise too_much_output()


def too_much_output(line: int | None = None) -> LimitExceeded:
    return LimitExceeded("output", f"the render printed more than {MAX_OUTPUT:,} characters", line)


def too_long(chars: int) -> LimitExceeded:
    return LimitExceeded(
        "text", f"a text of {chars:,} characters; at most {MAX_TEXT:,} in one value"
    )


def too_big(bits: int) -> LimitExceeded:
    return LimitExceeded(
        "integer", f"an integer of {bits:,} bits; at most {MAX_INT_BITS} bits (about 10**77)"
    )


def too_many(items: int) -> LimitExceeded:
    return LimitExceeded("items", f"{items:,} items in one value; at most {MAX_ITEMS:,}")


def fit(value: Any) -> Any:
    """``value`` when it is within the limits (an iterator comes back wrapped, so that what it
    yields is counted); :class:`LimitExceeded` otherwise."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_TEXT:
            raise too_long(len(value))
    elif kind is int:
        if value.bit_length() > MAX_INT_BITS:
            raise too_big(value.bit_length())
    elif kind is float or kind is bool or value is None:
        pass
    elif isinstance(value, str | bytes | bytearray):
        if len(value) > MAX_TEXT:
            raise too_long(len(value))
    elif isinstance(value, _CONTAINERS):
        weigh(value)
    elif isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise too_big(value.bit_length())
    elif isinstance(value, Iterator):
        return _counted(value)
    return value


def weigh(value: Any) -> None:
    """:class:`LimitExceeded` when ``value`` holds more than :data:`MAX_ITEMS` items or
    :data:`MAX_TEXT` characters through its nesting. Stops as soon as one is passed, so it costs
    at most a walk of that many items."""
    items = chars = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            chars += len(v)
            if chars > MAX_TEXT:
                raise too_long(chars)
        elif isinstance(v, list | tuple | set | frozenset):
            items += len(v)
            if items > MAX_ITEMS:
                raise too_many(items)
            stack.extend(v)
        elif isinstance(v, dict):
            items += len(v)
            if items > MAX_ITEMS:
                raise too_many(items)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif type(v) is int and v.bit_length() > MAX_INT_BITS:
            raise too_big(v.bit_length())


def _counted(items: Iterator[Any]) -> Iterator[Any]:
    chars = 0
    for count, item in enumerate(items, 1):
        if count > MAX_ITEMS:
            raise too_many(count)
        if isinstance(item, str):
            chars += len(item)
            if chars > MAX_TEXT:
                raise too_long(chars)
        yield fit(item)


# -- operators ----------------------------------------------------------------------------------


def _sized(value: Any) -> int:
    """The characters (a text) or the items (a container, through its nesting) of ``value``."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    items, stack = 0, [value]
    while stack and items <= MAX_ITEMS:
        v = stack.pop()
        if isinstance(v, list | tuple | set | frozenset):
            items += len(v)
            stack.extend(v)
        elif isinstance(v, dict):
            items += len(v)
            stack.extend(v.values())
    return items


def before_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left operator right`` when its result would pass a limit, without computing it."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and isinstance(seq, str | bytes | list | tuple):
                limit = MAX_TEXT if isinstance(seq, str | bytes) else MAX_ITEMS
                if times > 0 and _sized(seq) * times > limit:
                    raise (too_long if limit == MAX_TEXT else too_many)(_sized(seq) * times)
                return
        if isinstance(left, int) and isinstance(right, int):
            # the product has at least this many bits
            bits = left.bit_length() + right.bit_length() - 1
            if left and right and bits > MAX_INT_BITS:
                raise too_big(bits)
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            # |left| >= 2**(b-1), so |left ** right| >= 2**((b-1) * right)
            bits = (left.bit_length() - 1) * right
            if bits > MAX_INT_BITS:
                raise too_big(bits)
    elif operator == "%" and isinstance(left, str):
        check_percent(left, right)


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def check_percent(template: str, args: Any) -> None:
    """Refuse ``template % args`` when its widths, precisions or repeated fields would print
    more than :data:`MAX_TEXT` characters."""
    if "%" not in template:
        return
    values = args if isinstance(args, tuple) else (args,)
    star_max = max((v for v in values if type(v) is int), default=0)
    fields = widths = 0
    for match in _PERCENT.finditer(template):
        if match.group(3) == "%":
            continue
        fields += 1
        for number in match.group(1, 2):
            if number == "*":
                widths += star_max
            elif number is not None:
                widths += int(number) if len(number) <= 6 else MAX_TEXT + 1
        if widths > MAX_TEXT:
            raise LimitExceeded("text", f"format widths of {widths:,} characters")
    if isinstance(args, Mapping):
        # a mapping may be named by every field: each may print its largest value
        largest = max((_printed(v) for v in args.values()), default=0)
        printed = fields * largest
    else:
        printed = sum(_printed(v) for v in values)
    total = len(template) + widths + printed
    if total > MAX_TEXT:
        raise too_long(total)
    for value in values:
        check_decimal(value)


def _printed(value: Any) -> int:
    """A bound on the characters ``str(value)`` prints, for values that are within the limits."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, _CONTAINERS):
        return 4 * _sized(value) + sum(len(v) for v in _strings(value))
    return 80


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, list | tuple | set | frozenset):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())


def check_decimal(value: Any) -> None:
    # int(Decimal('1e99999')) takes seconds: a decimal is turned into an integer only when small
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() > 77:
        raise too_big(int(value.adjusted() * 3.33))


# -- method calls -------------------------------------------------------------------------------


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_TEXT:
        raise LimitExceeded(
            "text", f"a width of {width:,} characters; at most {MAX_TEXT:,} in one value"
        )


def replaced_size(text: str, old: Any, new: Any, count: Any) -> int:
    """The exact length of ``text.replace(old, new, count)``."""
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    found = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _join(sep: str, items: Any) -> tuple[Any, ...]:
    """The items of a ``join`` as a tuple, refused when the joined text would be too long."""
    values = tuple(items if isinstance(items, list | tuple) else fit(items))
    if len(values) > MAX_ITEMS:
        raise too_many(len(values))
    total = len(sep) * max(len(values) - 1, 0) + sum(_printed(v) for v in values)
    if total > MAX_TEXT:
        raise too_long(total)
    return values


def before_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Refuse a call of the text method ``owner.name(*args, **kwargs)`` that would build more than
    a limit; returns the arguments to call it with (a ``join`` reads its items once, here)."""
    if name in ("ljust", "rjust", "center", "zfill"):
        _width(_arg(args, kwargs, 0, "width", 0))
    elif name == "expandtabs":
        tab = _arg(args, kwargs, 0, "tabsize", 8)
        if isinstance(tab, int) and len(owner) + owner.count("\t") * tab > MAX_TEXT:
            raise too_long(len(owner) + owner.count("\t") * tab)
    elif name == "replace":
        size = replaced_size(
            owner, _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", ""),
            _arg(args, kwargs, 2, "count", -1),
        )  # fmt: skip
        if size > MAX_TEXT:
            raise too_long(size)
    elif name == "join" and args:
        return (_join(owner, args[0]), *args[1:])
    return args


#: attributes a template may not read, although they are on plain data: they build values
#: from arguments in one step (``(1).to_bytes(10**9)``) and no template needs them
REFUSED_ATTRIBUTES = frozenset({"to_bytes", "from_bytes", "translate", "maketrans"})


# -- filters ------------------------------------------------------------------------------------


def _batch(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    size = _arg(args, kwargs, 0, "linecount", 0)
    if isinstance(size, int) and size > MAX_ITEMS:
        raise too_many(size)


def _center(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _width(_arg(args, kwargs, 0, "width", 80))


def _format(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    check_percent(str(value), kwargs or tuple(args))


def _indent(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 4)
    step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = str(value)
    total = len(text) + (text.count("\n") + 1) * max(step, 0)
    if total > MAX_TEXT:
        raise too_long(total)


def _replace(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text = str(value)
    size = replaced_size(
        text, str(_arg(args, kwargs, 0, "old", "")), str(_arg(args, kwargs, 1, "new", "")),
        _arg(args, kwargs, 2, "count", None),
    )  # fmt: skip
    if size > MAX_TEXT:
        raise too_long(size)


def _wordwrap(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 79)
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    text = str(value)
    if len(text) > MAX_WRAPPED:  # wrapping is read word by word, in Python: a slow step
        raise LimitExceeded(
            "text", f"wordwrap of {len(text):,} characters; at most {MAX_WRAPPED:,}"
        )
    if isinstance(width, int) and width > 0:
        lines = len(text) // width + text.count("\n") + 1
        if lines > MAX_ITEMS:
            raise too_many(lines)
        total = len(text) + lines * (len(wrap) if isinstance(wrap, str) else 2)
        if total > MAX_TEXT:
            raise too_long(total)


def _sum(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # sum() of lists copies the growing total at each step: only numbers are added
    start = _arg(args, kwargs, 1, "start", 0)
    if not isinstance(start, int | float | Decimal):
        raise TypeError(f"sum() adds numbers; start={start!r} is not one")


def _round(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    digits = _arg(args, kwargs, 0, "precision", 0)
    if isinstance(digits, int) and abs(digits) > 30:
        raise LimitExceeded("integer", f"round() to {digits:,} digits; at most 30")
    check_decimal(value)


def _tojson(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    indent = _arg(args, kwargs, 0, "indent", None)
    if isinstance(indent, str):
        indent = len(indent)
    if isinstance(indent, int) and indent > 8:
        raise LimitExceeded("text", f"an indent of {indent:,}; at most 8")


def _int(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    check_decimal(value)


BEFORE_FILTER: dict[str, Callable[[Any, tuple[Any, ...], dict[str, Any]], None]] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "replace": _replace,
    "wordwrap": _wordwrap,
    "round": _round,
    "sum": _sum,
    "tojson": _tojson,
    "int": _int,
}

#: builtin filters templates do without: ``urlize`` adds its ``target`` and ``rel`` to every
#: link it finds (an amplifier) and no message needs it
REFUSED_FILTERS = frozenset({"urlize"})


def bounded_filter(name: str, func: Callable[..., Any]) -> Any:
    """``func`` (a builtin filter) checking the time limit, its arguments (when it is an
    amplifier, :data:`BEFORE_FILTER`) and its result (:func:`fit`)."""
    before = BEFORE_FILTER.get(name)
    skip = 0 if _PassArg.from_obj(func) is None else 1
    joins = name == "join"

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        if joins and len(args) > skip:
            sep = _arg(args[skip + 1 :], kwargs, 0, "d", "")
            args = (*args[:skip], _join(str(sep), args[skip]), *args[skip + 1 :])
        elif before is not None and len(args) > skip:
            before(args[skip], args[skip + 1 :], kwargs)
        return fit(func(*args, **kwargs))

    return bounded
