"""The sandbox templates render in: authors are marketers, not programmers.

Jinja2's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`, tightened:

- attributes are read only on plain data (text, numbers, dates, lists, mappings); anything
  else, every name starting with ``_`` and a few builders (``to_bytes``, ``translate``) are
  refused;
- every value a template makes is bounded, and every operation that could build a huge value
  is refused before it runs (:mod:`surmesure.decide.limits`): powers, products, padding and
  format widths, ``replace``, ``join``, ``indent``...; a render prints at most
  :data:`~surmesure.decide.limits.MAX_OUTPUT` characters;
- ``range()`` is capped at :data:`MAX_RANGE`, every ``for`` loop of a render counts against
  :data:`MAX_ITERATIONS` and recursive loops are refused;
- a render has a time limit, checked at each loop step, call, operator and builtin filter.
  Since no single operation is large, a render stops within a few milliseconds of its limit.

Two environments: :data:`HTML` escapes every value it prints (``<`` becomes ``&lt;``; the
template's own text is kept as written, and ``|safe`` marks a value as HTML), :data:`TEXT`
escapes nothing (SMS, push, the plain-text part of an e-mail).

A refusal or a failure raises :class:`TemplateError`, naming the template, the line and the
limit. Filters: see :mod:`surmesure.decide.filters`.
"""

from __future__ import annotations

import contextvars
import math
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from functools import update_wrapper
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2 import Template as JinjaTemplate
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.visitor import NodeTransformer
from markupsafe import EscapeFormatter, Markup

from surmesure.decide import limits
from surmesure.decide.filters import FILTERS, locale_of
from surmesure.decide.limits import (
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_ITERATIONS,
    MAX_OUTPUT,
    MAX_RANGE,
    MAX_TEXT,
    LimitExceeded,
)
from surmesure.domain.templates import MAX_SOURCE
from surmesure.errors import InvalidInput

__all__ = [
    "DEFAULT_TIME_LIMIT_S",
    "MAX_ITERATIONS",
    "MAX_RANGE",
    "Overtime",
    "TemplateError",
    "compile_text",
    "locale_of",
    "on_loop",
    "render_text",
]

DEFAULT_TIME_LIMIT_S = 0.25
SAFE_TYPES = (str, int, float, bool, Decimal, date, datetime, dict, list, tuple)


class TemplateError(InvalidInput):
    """A template that cannot compile or render; names the template, the line and, when one was
    passed, the limit (``time``, ``iterations``, ``range``, ``text``, ``items``, ``integer``,
    ``output``, ``source``, ``recursion``). Over HTTP: 422."""

    http_status = 422
    code = "template"

    def __init__(
        self, template: str, line: int | None, reason: str, limit: str | None = None
    ) -> None:
        where = f"template {template!r}" + (f", line {line}" if line else "")
        super().__init__(
            f"{where}: {reason}",
            hint="a template may read the values it is given (person, context, offers, "
            f"products), loop {MAX_ITERATIONS:,} times, use range() up to {MAX_RANGE:,}, make "
            f"texts of {MAX_TEXT:,} characters, lists of {MAX_ITEMS:,} items, integers of "
            f"{MAX_INT_BITS} bits, and print {MAX_OUTPUT:,} characters",
            field=template,
        )
        self.template = template
        self.line = line
        self.reason = reason
        self.limit = limit

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {**super().to_dict(), "template": self.template}
        if self.line:
            body["line"] = self.line
        if self.limit:
            body["limit"] = self.limit
        return body


class Overtime(Exception):
    """A render on the server's event loop needs more than the loop can give it (see
    :func:`on_loop`): nothing was recorded; decide again off the loop, with the full limit."""


# -- compiled code: output counted, ``~`` bounded ------------------------------------------------


class _Generator(CodeGenerator):
    """Jinja's code generator, with two changes. What a macro, a ``{% set %}`` block or a
    ``{% filter %}`` block prints goes to a list before it is joined: each such write is counted
    against the render's output budget as it happens (top-level output is counted by
    :func:`render_text` as it streams). ``a ~ b`` checks the length of the text before joining."""

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        if frame.buffer is None:
            super().visit_Output(node, frame)
            return
        start = self.temporary_identifier()
        self.writeline(f"{start} = len({frame.buffer})")
        super().visit_Output(node, frame)
        self.writeline(f"environment.spend_since({frame.buffer}, {start})")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            escape = "context.eval_ctx.autoescape"
        else:
            escape = "True" if frame.eval_ctx.autoescape else "False"
        self.write(f"environment.join_bounded({escape}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Literals(NodeTransformer):
    """Wraps each list, tuple and dict written in a template with values in it (``[s, s]``) in
    the ``_fit`` filter, so that such a value is bounded like any other."""

    def _fitted(self, literal: nodes.Expr) -> nodes.Node:
        node = self.generic_visit(literal)
        if getattr(node, "ctx", "load") != "load" or not isinstance(node, nodes.Expr):
            return node
        try:
            node.as_const()
        except nodes.Impossible:
            return nodes.Filter(node, "_fit", [], [], None, None, lineno=node.lineno)
        return node

    visit_List = visit_Tuple = visit_Dict = _fitted


class _Formatter(SandboxedFormatter):
    """``str.format`` in the sandbox: widths refused beyond :data:`MAX_TEXT`, and the text it
    builds counted field by field (``'{0}{0}{0}…'`` of a long value stops at the limit)."""

    _printed = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._printed = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        limits.check_time()
        for digits in re.findall(r"\d+", format_spec):
            if len(digits) > 6 or int(digits) > MAX_TEXT:
                raise LimitExceeded("text", f"a format width of {digits} characters")
        limits.check_decimal(value)
        text = super().format_field(value, format_spec)
        self._printed += len(text)
        if self._printed > MAX_TEXT:
            raise limits.too_long(self._printed)
        return text


class _EscapeFormatter(_Formatter, EscapeFormatter):
    pass


# -- the environment -----------------------------------------------------------------------------


@pass_context
def _guard(_ctx: Any, items: Iterable[Any]) -> Iterator[Any]:
    return limits.iterate(items)


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise LimitExceeded("range", f"range() of {len(r):,} items; at most {MAX_RANGE:,}")
    return r


_DICT_NAMES = frozenset(dir(dict))


class Sandbox(ImmutableSandboxedEnvironment):
    """The environment templates compile in (``html``: values are escaped when printed)."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, *, html: bool) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=html,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.globals = {"range": _range}
        self.filters = {
            name: limits.bounded_filter(name, func)
            for name, func in self.filters.items()
            if name not in limits.REFUSED_FILTERS
        }
        self.filters.update(FILTERS)
        self.filters.update({"_loop_guard": _guard, "_fit": limits.fit})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            if loop.recursive:
                raise TemplateSyntaxError(
                    "recursive loops are not available in templates", loop.lineno, name, filename
                )
            loop.iter = nodes.Filter(
                loop.iter, "_loop_guard", [], [], None, None, lineno=loop.lineno
            )
        _Literals().visit(tree)  # replaces the literals in place; the root stays
        tree.set_environment(self)
        return tree

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``p.name`` on a mapping (a product, a person's fields) is its item: read at once
        # rather than after a failed attribute lookup (what Jinja would return all the same;
        # a name of a dict method still goes the sandbox's way)
        if type(obj) is dict and attribute not in _DICT_NAMES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not isinstance(obj, SAFE_TYPES) or attr in limits.REFUSED_ATTRIBUTES:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        limits.check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            args = limits.before_method(owner, __obj.__name__, args, kwargs)
        return limits.fit(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limits.check_time()
        limits.before_binop(operator, left, right)
        return limits.fit(self.binop_table[operator](left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map`` of a text, through :class:`_Formatter` (Jinja's
        own, with the widths and the length bounded)."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        kind = type(owner)
        formatter = (
            _EscapeFormatter(self, escape=owner.escape)
            if isinstance(owner, Markup)
            else _Formatter(self)
        )
        mapping = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if not mapping:
                return kind(formatter.vformat(owner, args, kwargs))
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            return kind(formatter.vformat(owner, (), args[0]))

        return update_wrapper(bounded, value)

    # called from compiled templates (see _Generator)

    def spend_since(self, buffer: list[str], start: int) -> None:
        limits.spend(sum(map(len, buffer[start:])))

    def join_bounded(self, autoescape: bool, items: tuple[Any, ...]) -> str:
        parts = [v if isinstance(v, str) else str(v) for v in items]
        total = sum(map(len, parts))
        if total > MAX_TEXT:
            raise limits.too_long(total)
        if autoescape and any(hasattr(p, "__html__") for p in parts):
            return Markup("").join(parts)
        return "".join(parts)


HTML = Sandbox(html=True)
TEXT = Sandbox(html=False)


def compile_text(source: str, name: str, *, html: bool = False) -> JinjaTemplate:
    """Compile ``source`` as the template ``name`` (``html``: printed values are escaped);
    :class:`TemplateError` when it does not parse or is longer than :data:`MAX_SOURCE`."""
    if len(source) > MAX_SOURCE:
        raise TemplateError(
            name, None, f"{len(source):,} characters; at most {MAX_SOURCE:,}", limit="source"
        )
    env = HTML if html else TEXT
    try:
        code = env.compile(source, name=name, filename=name)
    except TemplateSyntaxError as exc:
        raise TemplateError(name, exc.lineno, exc.message or "syntax error") from None
    compiled: JinjaTemplate = env.template_class.from_code(env, code, env.make_globals(None), None)
    return compiled


# the seconds renders may still spend on the event loop during one decision (see on_loop)
_loop_room: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "loop_room", default=None
)


@contextmanager
def on_loop(seconds: float) -> Iterator[None]:
    """Renders within the block run on the server's event loop: together they get ``seconds``
    (a few milliseconds) instead of their full limit, and one that needs more raises
    :class:`Overtime`, to be done again off the loop."""
    token = _loop_room.set([seconds])
    try:
        yield
    finally:
        _loop_room.reset(token)


_ERRORS = (
    JinjaError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
    MemoryError,
    RecursionError,
)


def render_text(
    compiled: JinjaTemplate,
    values: dict[str, Any],
    *,
    locale: str = "fr",
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> str:
    """Render ``compiled`` with ``values`` in ``locale`` within the limits of the sandbox."""
    room = _loop_room.get()
    started = time.perf_counter()
    if room is None:
        render = limits.Render(
            started + time_limit_s, locale_of(locale), False, started + limits.PAUSE_EVERY_S
        )
    else:
        capped = room[0] < time_limit_s
        limit = room[0] if capped else time_limit_s
        render = limits.Render(started + limit, locale_of(locale), capped, math.inf)
    token = limits.current.set(render)
    try:
        try:
            # the result is counted as it streams, so that a render past the limit stops there
            parts: list[str] = []
            append = parts.append
            left = MAX_OUTPUT
            root = compiled.root_render_func(compiled.new_context(values))
            for chunk in root:
                left -= len(chunk)
                if left < 0:
                    raise limits.too_much_output(_line_at(compiled, root))
                append(chunk)
            if left < MAX_OUTPUT - render.output:  # with what macros and blocks printed
                raise limits.too_much_output()
            return "".join(parts)
        except Exception:
            compiled.environment.handle_exception()  # raises it again with template lines
    except _ERRORS as exc:
        limit_name = getattr(exc, "limit", None)
        if limit_name == "time" and render.on_loop:
            raise Overtime(compiled.name) from None
        name = compiled.name or "<template>"
        if isinstance(exc, RecursionError):
            reason = "macros call themselves too deeply"
            raise TemplateError(name, None, reason, "recursion") from None
        line = getattr(exc, "line", None) or _line_of(exc, name)
        raise TemplateError(name, line, str(exc), limit_name) from None
    finally:
        limits.current.reset(token)
        if room is not None:
            room[0] -= time.perf_counter() - started


def _line_at(compiled: JinjaTemplate, root: Iterator[str]) -> int | None:
    """The template line a paused render is at."""
    frame = getattr(root, "gi_frame", None)
    return compiled.get_corresponding_lineno(frame.f_lineno) if frame is not None else None


def _line_of(exc: BaseException, filename: str) -> int | None:
    """The template line the error happened on (Jinja maps frames back to template lines)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
