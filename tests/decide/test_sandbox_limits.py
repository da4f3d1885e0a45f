"""The sandbox holds: every way a template could build a huge value, print without end or run
past its time limit in one step is refused with a TemplateError naming the limit.

Each source below is an attack: before the limits, it ran for seconds to minutes in one
uninterruptible step, or built hundreds of megabytes to gigabytes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from surmesure.decide.limits import MAX_INT_BITS, MAX_ITEMS, MAX_OUTPUT, MAX_TEXT
from surmesure.decide.sandbox import TemplateError, compile_text, render_text
from surmesure.domain.templates import MAX_SOURCE, TemplateDefinition

LONG = "x" * 99_999  # within the text limit: each attack starts from values a template may hold

ATTACKS: list[tuple[str, str, dict[str, Any], str]] = [
    # integers: one C-level operation on huge numbers cannot be interrupted
    ("chained powers", "{{ ((10 ** 64) ** 64 ** 64 ** 64) > 0 }}", {}, "integer"),
    ("products", "{% set a = 10 ** 60 %}{{ a * a * a * a * a * a * a * a }}", {}, "integer"),
    ("int of a decimal", "{{ d|int }}", {"d": Decimal("1e99999")}, "integer"),
    ("round to digits", "{{ 1.5|round(1500000000, 'floor') }}", {}, "integer"),
    # padding and format widths
    ("ljust", "{{ 'a'.ljust(1500000000) }}", {}, "text"),
    ("rjust", "{{ 'a'.rjust(1500000000) }}", {}, "text"),
    ("center", "{{ 'a'.center(1500000000) }}", {}, "text"),
    ("zfill", "{{ '1'.zfill(1500000000) }}", {}, "text"),
    ("expandtabs", "{{ ('\t' * 100000).expandtabs(100000) }}", {}, "text"),
    ("percent width", "{{ '%1500000000s' % x }}", {"x": "a"}, "text"),
    ("percent precision", "{{ '%.1500000000f' % 1.0 }}", {}, "text"),
    ("percent star", "{{ '%*s' % (1500000000, 'a') }}", {}, "text"),
    ("percent fields", "{{ ('%(a)s' * 10000) % {'a': s} }}", {"s": LONG}, "text"),
    ("format width", "{{ '{:1500000000}'.format(x) }}", {"x": "a"}, "text"),
    ("format precision", "{{ '{:.1500000000f}'.format(1.0) }}", {}, "text"),
    ("nested format width", "{{ '{:{w}}'.format('a', w=1500000000) }}", {}, "text"),
    ("format fields", "{{ ('{0}' * 30000).format(s) }}", {"s": LONG}, "text"),
    ("format_map", "{{ ('{a}' * 30000).format_map({'a': s}) }}", {"s": LONG}, "text"),
    ("format filter", "{{ '%1500000000s'|format(x) }}", {"x": "a"}, "text"),
    ("center filter", "{{ 'a'|center(1500000000) }}", {}, "text"),
    ("indent filter", "{{ ('a\n' * 50000)|indent(1500000000) }}", {}, "text"),
    ("indent by text", "{{ ('a\n' * 50000)|indent(s, true) }}", {"s": LONG}, "text"),
    ("wordwrap filter", "{{ ('a ' * 9000)|wordwrap(2, wrapstring=s) }}", {"s": LONG}, "text"),
    ("replace of nothing", "{{ ('a' * 100000).replace('', s) }}", {"s": LONG}, "text"),
    ("replace filter", "{{ ('a' * 1000)|replace('a', s) }}", {"s": LONG}, "text"),
    ("join separator", "{{ range(1000)|join(s) }}", {"s": LONG}, "text"),
    ("join of a text", "{{ s|join(s) }}", {"s": LONG}, "items"),
    ("str join", "{{ s.join(range(1000)|map('string')) }}", {"s": LONG}, "text"),
    ("wordwrap of a long text", "{{ ('a ' * 20000)|wordwrap(79) }}", {}, "text"),
    ("tojson indent", "{{ [1, 2]|tojson(1500000000) }}", {}, "text"),
    ("batch fill", "{{ [1]|batch(1500000000, 'x')|list }}", {}, "items"),
    ("slice count", "{{ [1]|slice(1500000000)|list }}", {}, "items"),
    # containers: a list of long texts prints as one huge text
    ("nested lists", "{{ [[1] * 10000] * 10000 }}", {}, "items"),
    ("list of long texts", "{{ [s] * 5000 }}", {"s": LONG}, "text"),
    ("literal of long texts", "{{ [s, s, s, s, s, s, s, s, s, s] }}", {"s": LONG}, "text"),
    ("dict fromkeys", "{{ {}.fromkeys(range(1000), s) }}", {"s": LONG}, "text"),
    ("list of a text", "{{ (s ~ 'x')|list|length }}", {"s": LONG}, "items"),
    ("mapped texts joined", "{{ range(1000)|map('center', 99999)|join }}", {}, "text"),
    # concatenation and accumulation
    ("concat", "{{ s ~ s }}", {"s": LONG}, "text"),
    (
        "doubling through macros",
        "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% else %}{{ s|length }}"
        "{% endif %}{% endmacro %}{{ f('x', 40) }}",
        {},
        "text",
    ),
    ("plus", "{{ s + s }}", {"s": LONG}, "text"),
    # output
    (
        "printing in loops",
        "{% for i in range(900) %}{% for j in range(10) %}{{ s }}{% endfor %}{% endfor %}",
        {"s": LONG},
        "output",
    ),
    (
        "printing in a macro",
        "{% macro m() %}{% for i in range(900) %}{% for j in range(10) %}{{ s }}{% endfor %}"
        "{% endfor %}{% endmacro %}{{ m()|length }}",
        {"s": LONG},
        "output",
    ),
    (
        "printing in a filter block",
        "{% filter upper %}{% for i in range(900) %}{% for j in range(10) %}{{ s }}"
        "{% endfor %}{% endfor %}{% endfilter %}",
        {"s": LONG},
        "output",
    ),
    (
        "template text in a set block",
        "{% set t %}{% for i in range(900) %}{% for j in range(10) %}"
        + "y" * 200
        + "{% endfor %}{% endfor %}{% endset %}{{ t|length }}",
        {},
        "output",
    ),
]


@pytest.mark.parametrize(
    ("source", "values", "limit"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS]
)
def test_an_attack_is_refused_naming_the_limit(
    source: str, values: dict[str, Any], limit: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        render_text(compile_text(source, "promo/default"), values)
    error = caught.value
    assert error.limit == limit, error.reason
    assert error.template == "promo/default"
    body = error.to_dict()
    assert body["code"] == "template" and body["limit"] == limit and error.http_status == 422


def test_values_within_the_limits_render() -> None:
    source = (
        "{{ 10 ** 77 > 0 }} {{ (2 ** 128) * (2 ** 127) > 0 }} {{ 'a'.ljust(5) }}| "
        "{{ '%5s|%.2f' % ('b', 1.5) }} {{ '{:>4}'.format('c') }} {{ 'd'|center(3) }}|"
        "{{ [1, 2]|join(',') }} {{ ('x' * 99999)|length }} {{ ('a b'|wordwrap(1))|length }} "
        "{{ ('ab' * 10)|replace('a', 'c')|length }} {{ ([1] * 9999)|length }}"
    )
    assert render_text(compile_text(source, "fine"), {}) == (
        "True True a    |     b|1.50    c  d |1,2 99999 3 20 9999"
    )


def test_the_limits_are_at_their_stated_values() -> None:
    text = compile_text("{{ ('x' * n)|length }}", "text")
    assert render_text(text, {"n": MAX_TEXT}) == str(MAX_TEXT)
    with pytest.raises(TemplateError, match=f"{MAX_TEXT:,}"):
        render_text(text, {"n": MAX_TEXT + 1})
    items = compile_text("{{ ([1] * n)|length }}", "items")
    assert render_text(items, {"n": MAX_ITEMS}) == str(MAX_ITEMS)
    with pytest.raises(TemplateError, match=f"{MAX_ITEMS:,}"):
        render_text(items, {"n": MAX_ITEMS + 1})
    power = compile_text("{{ (2 ** n) > 0 }}", "power")
    assert render_text(power, {"n": MAX_INT_BITS - 1}) == "True"
    with pytest.raises(TemplateError, match=f"{MAX_INT_BITS} bits"):
        render_text(power, {"n": MAX_INT_BITS})
    printed = compile_text("{% for i in range(1000) %}{{ s }}{% endfor %}{{ end }}", "printed")
    chunk = "y" * (MAX_OUTPUT // 1000)
    assert len(render_text(printed, {"s": chunk, "end": ""})) == MAX_OUTPUT
    with pytest.raises(TemplateError, match="printed more than"):
        render_text(printed, {"s": chunk, "end": "!"})


def test_builders_and_recursive_loops_are_not_available() -> None:
    for source in ("{{ (1).to_bytes(1500000000, 'big') }}", "{{ 'a'.translate({}) }}"):
        with pytest.raises(TemplateError, match="unsafe"):
            render_text(compile_text(source, "builders"), {})
    with pytest.raises(TemplateError, match="recursive loops") as caught:
        compile_text("a\n{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "tree")
    assert caught.value.line == 2
    with pytest.raises(TemplateError, match="No filter named 'urlize'"):
        compile_text("{{ 'see www.example.com'|urlize }}", "links")
    with pytest.raises(TemplateError, match="adds numbers"):  # a sum of lists copies them
        render_text(compile_text("{{ [[1], [2]]|sum(start=[]) }}", "sums"), {})
    assert render_text(compile_text("{{ [1, 2.5]|sum }}", "sums"), {}) == "3.5"


def test_the_template_document_declares_its_format() -> None:
    schema = TemplateDefinition.model_json_schema()
    assert schema["properties"]["format"]["anyOf"][0] == {
        "enum": ["html", "text"],
        "type": "string",
    }
    assert schema["$defs"]["Variant"]["properties"]["body"]["maxLength"] == MAX_SOURCE

    def definition(**fields: str) -> TemplateDefinition:
        body = {"name": "t", "placement": "p", "variants": [{"name": "d", "body": "x"}]}
        return TemplateDefinition.model_validate({**body, **fields})

    assert definition().output_format == "html"  # the web
    assert definition(channel="email").output_format == "html"
    assert definition(channel="sms").output_format == "text"
    assert definition(channel="email", format="text").output_format == "text"
    with pytest.raises(ValidationError, match="format"):
        definition(format="markdown")


def test_a_template_text_has_a_size_limit() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_text("x" * (MAX_SOURCE + 1), "huge")
    assert caught.value.limit == "source"


def test_the_line_of_a_refusal_is_named() -> None:
    with pytest.raises(TemplateError) as caught:
        render_text(compile_text("Bonjour\n\n{{ 'a'.ljust(10 ** 9) }}", "news/default"), {})
    assert caught.value.line == 3 and "line 3" in caught.value.message


# -- output format ------------------------------------------------------------------------------

SCRIPT = "<script>alert('x')</script>"


def test_html_templates_escape_printed_values_and_keep_their_own_markup() -> None:
    source = (
        "<p>Bonjour {{ name }}</p>{% set greeting %}<b>{{ name }}</b>{% endset %}{{ greeting }}"
        "{{ '<i>%s</i>' % name }}{{ name ~ '!' }}{{ '{}'.format(name) }}{{ [name]|join }}"
        "{% macro m(x) %}<u>{{ x }}</u>{% endmacro %}{{ m(name) }}{{ '<br>'|safe }}"
    )
    out = render_text(compile_text(source, "web/default", html=True), {"name": SCRIPT})
    assert "<script>" not in out
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert out == (
        f"<p>Bonjour {escaped}</p><b>{escaped}</b>&lt;i&gt;{escaped}&lt;/i&gt;{escaped}!"
        f"{escaped}{escaped}<u>{escaped}</u><br>"
    )


def test_text_templates_escape_nothing() -> None:
    out = render_text(compile_text("Bonjour {{ name }} & co", "sms/default"), {"name": SCRIPT})
    assert out == f"Bonjour {SCRIPT} & co"
