"""Templates: fallbacks and their reasons, variant choice, the sandbox, Babel formatting."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError

from surmesure.decide.content import NOBODY, Audience, CompiledTemplate, Known, render
from surmesure.decide.library import EXAMPLES, Library, parse_template
from surmesure.decide.sandbox import MAX_ITERATIONS, TemplateError, compile_text, render_text
from surmesure.domain.segments import SegmentDefinition
from surmesure.domain.templates import TemplateDefinition
from surmesure.errors import InvalidInput

NOW = datetime(2026, 3, 10, 12, 0)
GREETING = """
name: greeting
placement: email_test
min_reliability: 0.6
fields:
  first_name: {trait: first_name, fallback: ""}
  city: {trait: city, fallback: "chez vous", min_reliability: 0.3}
variants:
  - name: vip
    segment: vip
    body: "VIP {{ person.first_name }}"
  - name: big_spender
    when: {trait: {name: tier, op: eq, value: gold}}
    body: "Gold {{ person.first_name }}"
  - name: default
    body: "Bonjour{% if person.first_name %} {{ person.first_name }}{% endif %}, {{ person.city }}"
"""


def compiled(text: str = GREETING) -> CompiledTemplate:
    return CompiledTemplate(parse_template(text, "greeting.yaml"))


def person(**traits: tuple[object, str, float]) -> dict[str, Known]:
    return {name: Known(v, source, rel) for name, (v, source, rel) in traits.items()}


def reasons(out: object) -> dict[str, str]:
    fields = out.explanation["fields"]  # type: ignore[attr-defined]
    return {f["field"]: ("used" if f["used"] else f["reason"]) for f in fields}


def test_reliable_trait_is_used_with_its_source() -> None:
    who = Audience(1, person(first_name=("Marie", "crm", 0.9), city=("Lyon", "web", 0.35)))
    out = render(compiled(), who, now=NOW)
    assert out.body == "Bonjour Marie, Lyon"
    assert reasons(out) == {"first_name": "used", "city": "used"}
    first = out.explanation["fields"][0]
    assert (first["source"], first["effective_reliability"]) == ("crm", 0.9)


def test_unreliable_trait_falls_back() -> None:
    who = Audience(1, person(first_name=("Marie", "partner", 0.59), city=("Lyon", "web", 0.29)))
    out = render(compiled(), who, now=NOW)
    assert out.body == "Bonjour, chez vous"
    assert reasons(out) == {"first_name": "unreliable", "city": "unreliable"}


def test_field_threshold_overrides_the_template_one() -> None:
    # 0.35 is under the template's 0.6 but over the city field's own 0.3
    who = Audience(1, person(first_name=("Marie", "web", 0.35), city=("Lyon", "web", 0.35)))
    out = render(compiled(), who, now=NOW)
    assert reasons(out) == {"first_name": "unreliable", "city": "used"}


def test_missing_trait_falls_back() -> None:
    out = render(compiled(), Audience(1, person(city=("Lyon", "crm", 0.9))), now=NOW)
    assert out.body == "Bonjour, Lyon"
    assert reasons(out) == {"first_name": "missing", "city": "used"}


def test_opted_out_gets_everything_neutral_even_in_a_segment() -> None:
    who = Audience(
        1,
        person(first_name=("Marie", "crm", 0.95), tier=("gold", "crm", 0.95)),
        segments=frozenset({"vip"}),
        opted_out=True,
    )
    out = render(compiled(), who, now=NOW)
    assert out.variant == "default"
    assert out.body == "Bonjour, chez vous"
    assert reasons(out) == {"first_name": "opted_out", "city": "opted_out"}
    assert "opted out" in out.explanation["variant"]["reason"]
    assert all("source" not in f for f in out.explanation["fields"])


def test_unknown_person_is_neutral() -> None:
    out = render(compiled(), NOBODY, now=NOW)
    assert (out.variant, out.body) == ("default", "Bonjour, chez vous")
    assert set(reasons(out).values()) == {"unknown_person"}


def test_first_matching_variant_wins() -> None:
    traits = person(first_name=("Marie", "crm", 0.9), tier=("gold", "crm", 0.9))
    both = render(compiled(), Audience(1, traits, segments=frozenset({"vip"})), now=NOW)
    assert (both.variant, both.body) == ("vip", "VIP Marie")
    assert "vip" in both.explanation["variant"]["reason"]
    gold = render(compiled(), Audience(1, traits), now=NOW)
    assert (gold.variant, gold.body) == ("big_spender", "Gold Marie")
    silver = person(first_name=("Marie", "crm", 0.9), tier=("silver", "crm", 0.9))
    plain = render(compiled(), Audience(1, silver, segments=frozenset({"other"})), now=NOW)
    assert plain.variant == "default"
    assert plain.explanation["variant"]["reason"].startswith("default")


def test_when_rule_can_reference_a_segment_definition() -> None:
    text = GREETING.replace(
        "when: {trait: {name: tier, op: eq, value: gold}}", "when: {segment: golden}"
    )
    golden = SegmentDefinition.model_validate(
        {"name": "golden", "where": {"trait": {"name": "tier", "op": "eq", "value": "gold"}}}
    )
    who = Audience(1, person(tier=("gold", "crm", 0.9)))
    out = render(compiled(text), who, now=NOW, catalog={"golden": golden})
    assert out.variant == "big_spender"


def test_the_default_variant_must_come_last_without_a_rule() -> None:
    bad = GREETING.replace("  - name: default\n", "  - name: default\n    segment: vip\n")
    with pytest.raises(InvalidInput, match="default"):
        parse_template(bad, "bad.yaml")
    with pytest.raises(ValidationError):
        TemplateDefinition.model_validate({"name": "x", "placement": "p", "variants": []})


def test_the_shipped_examples_load() -> None:
    library = Library(EXAMPLES)
    assert {"email_weekly", "home_banner", "personal_page"} <= set(library.by_placement)
    assert len(library.named("welcome_email").definition.variants) == 3


# -- the sandbox -----------------------------------------------------------------------------


def refusal(source: str, name: str = "promo/default", **values: object) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render_text(compile_text(source, name), dict(values))
    return caught.value


def test_attribute_access_outside_the_context_is_refused() -> None:
    error = refusal("Bonjour\n{{ ''.__class__.__mro__ }}")
    assert (error.template, error.line) == ("promo/default", 2)
    assert "promo/default" in error.message and "line 2" in error.message
    assert "unsafe" in error.reason

    class Secret:
        password = "hunter2"

    error = refusal("{{ s.password }}", s=Secret())
    assert "hunter2" not in error.message


def test_mutating_the_context_is_refused() -> None:
    error = refusal("{% set x = items.append(1) %}", items=[])
    assert "unsafe" in error.reason or "not safely callable" in error.reason


def test_long_loops_and_big_ranges_are_refused() -> None:
    error = refusal("a\nb\n{% for i in range(5000) %}{{ i }}{% endfor %}")
    assert error.line == 3 and "range()" in error.reason
    nested = "{% for i in range(1000) %}\n{% for j in range(1000) %}.{% endfor %}{% endfor %}"
    error = refusal(nested)
    assert f"{MAX_ITERATIONS:,}" in error.reason and error.line == 2
    assert refusal("{{ 'x' * 10000000 }}").limit == "text"


def test_a_render_has_a_time_limit() -> None:
    slow = compile_text(
        "{% for i in range(1000) %}{% for j in range(9) %}{{ 'ab'|upper }}{% endfor %}{% endfor %}",
        "slow",
    )
    assert len(render_text(slow, {})) == 2 * 9000  # within the limit it renders whole
    with pytest.raises(TemplateError, match="time limit") as caught:
        render_text(slow, {}, time_limit_s=1e-4)
    assert caught.value.template == "slow"


def test_a_syntax_error_names_the_template_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_text("one\ntwo\n{% if %}", "news/default")
    assert (caught.value.template, caught.value.line) == ("news/default", 3)


def test_an_undefined_name_is_a_clear_error() -> None:
    error = refusal("Bonjour\n{{ persn.first_name }}")
    assert error.line == 2 and "persn" in error.reason


# -- Babel formatting --------------------------------------------------------------------------


def french_number(value: float, digits: int = 2) -> str:
    # independent of Babel: Python's own grouping, then the French CLDR separators
    return f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


@pytest.mark.parametrize("value", [0.5, 1234.5, 98765.432, 1_000_000.0])
def test_money_and_numbers_in_french_and_english(value: float) -> None:
    t = compile_text("{{ v|money('EUR') }}|{{ v|number(2) }}|{{ v|money('USD') }}", "fmt")
    fr = render_text(t, {"v": value}, locale="fr")
    en = render_text(t, {"v": value}, locale="en")
    assert fr.split("|") == [
        french_number(value) + "\xa0€",
        french_number(value),
        french_number(value) + "\xa0$US",
    ]
    assert en.split("|") == [f"€{value:,.2f}", f"{value:,.2f}", f"${value:,.2f}"]


def test_an_amount_not_known_prints_nothing_and_the_message_still_renders() -> None:
    """A recommended product the catalog does not hold (yet) has no price: the line prints
    without it, where it failed the whole message."""
    t = compile_text("{% for p in products %}{{ p.name }}: {{ p.price|money('EUR') }};{% endfor %}"
                     "{{ none|number(2) }}{{ none|percent }}", "amounts")  # fmt: skip
    products = [{"name": "Tea", "price": None}, {"name": "Mug", "price": 8.5}]
    assert render_text(t, {"products": products, "none": None}, locale="fr") == (
        "Tea: ;Mug: 8,50\xa0€;"
    )


def test_dates_in_french_and_english() -> None:
    t = compile_text("{{ d|date }}|{{ d|date('short') }}|{{ t|time }}", "dates")
    values = {"d": date(2026, 7, 14), "t": datetime(2026, 7, 14, 18, 5)}
    assert render_text(t, values, locale="fr") == "14 juillet 2026|14/07/2026|18:05"
    en = render_text(t, values, locale="en").split("|")
    assert en[:2] == ["July 14, 2026", "7/14/26"]
    assert en[2].replace("\u202f", " ") == "6:05 PM"


def test_the_locale_is_chosen_per_render_not_per_compile() -> None:
    t = compile_text("{{ 1234.5|money('EUR') }}", "fold")
    assert render_text(t, {}, locale="en") == "€1,234.50"
    assert render_text(t, {}, locale="fr") == french_number(1234.5) + "\xa0€"
