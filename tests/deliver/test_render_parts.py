"""A message's HTML and text parts choose their variant and resolve their fields once
(:func:`surmesure.decide.content.render_parts`): the message is byte for byte what rendering
each part on its own gives, hostile values and escaping included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from surmesure.config import get_settings
from surmesure.decide.content import (
    NOBODY,
    Audience,
    CompiledTemplate,
    Known,
    render,
    render_parts,
    twins,
)
from surmesure.decide.personal import Personal
from surmesure.deliver.content import PAGE_LINK, ChannelTemplates
from surmesure.domain.campaigns import ChannelContent
from surmesure.domain.templates import TemplateDefinition

NOW = datetime(2026, 3, 2, 10)
HOSTILE = [
    "<script>alert('x')</script>",
    'Lyon" onmouseover="x',
    "&amp; &lt;b&gt; {{ person.city }} {% if 1 %}",
    "Zoë — 東京\n\nnouvelle ligne",
    "",
]
BODY = (
    "<mjml><mj-body><mj-section><mj-column>"
    "<mj-text font-size='20px'>{headline}</mj-text>"
    "<mj-text>À {{{{ person.city }}}} : {{{{ person.points }}}} points"
    "{{% if person.tier %}} (niveau {{{{ person.tier }}}}){{% endif %}}.</mj-text>"
    "{{% for p in products %}}<mj-text><a href='https://shop.example/p/{{{{ p.product_code }}}}'>"
    "{{{{ p.name }}}}</a> : {{{{ p.price|money(currency) }}}}</mj-text>{{% endfor %}}"
    "<mj-button href='https://shop.example/spring'>Voir</mj-button>"
    "</mj-column></mj-section></mj-body></mjml>"
)
TEMPLATE = {
    "name": "parts_mail",
    "placement": "email_parts",
    "channel": "email",
    "format": "html",
    "currency": "EUR",
    "min_reliability": 0.5,
    "fields": {
        "city": {"trait": "city", "fallback": "votre <ville>"},
        "points": {"metric": "points", "fallback": 0},
        "tier": {"metric": "clv_tier", "fallback": ""},
    },
    "variants": [
        {"name": "loyal", "segment": "loyal", "subject": "Merci, {{ person.city }}",
         "body": BODY.format(headline="Merci & fidélité")},
        {"name": "new", "segment": "new", "subject": "Bienvenue à {{ person.city }}",
         "body": BODY.format(headline="Bienvenue")},
        {"name": "default", "subject": "Le printemps <{{ person.tier }}>",
         "body": BODY.format(headline="Le printemps")},
    ],
}  # fmt: skip


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "parts_mail.yaml").write_bytes(orjson.dumps(TEMPLATE))  # JSON is YAML
    monkeypatch.setenv("SURMESURE_TEMPLATES_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def audiences() -> list[Audience]:
    """Each segment, unreliable and missing values, an opt-out and nobody, hostile texts."""
    out: list[Audience] = [NOBODY]
    for i, city in enumerate(HOSTILE):
        out.append(
            Audience(
                person_id=i + 1,
                traits={"city": Known(city, "crm", 0.9 if i % 4 else 0.2)},
                segments=frozenset({("loyal", "new", "other")[i % 3]}),
                metrics={
                    "points": Known(i * 7, "derive", 0.9),
                    "clv_tier": Known(f"<gold {i}>", "derive", 0.9 if i % 2 else 0.1),
                },
            )
        )
    out.append(Audience(person_id=99, opted_out=True, segments=frozenset({"loyal"})))
    return out


PRODUCTS = [
    {"product_code": f"P{i}'\"", "name": f"Produit <b>{i}</b> & {HOSTILE[i]}", "price": 9.9 + i}
    for i in range(4)
]


def alone(channel: ChannelTemplates, audience: Audience, products: list[dict[str, object]],
          link: str | None = None) -> tuple[str, str, str | None, dict[str, object]]:  # fmt: skip
    """What the message was when each part was rendered on its own."""
    links = {PAGE_LINK: link} if link is not None else None
    subject, text, html, explanation = "", "", None, {}
    if channel.html is not None:
        done = render(channel.html, audience, now=NOW, context={}, products=products,
                      with_subject=channel.text is None, links=links)  # fmt: skip
        subject, html, explanation = done.subject, done.body, done.explanation
    if channel.text is not None:
        done = render(channel.text, audience, now=NOW, context={}, products=products, links=links)
        subject, text, explanation = done.subject or subject, done.body, done.explanation
    return subject, text, html, explanation


def test_a_library_mjml_message_is_what_its_parts_rendered_alone_give(library: Path) -> None:
    channel = ChannelTemplates("c", "email", ChannelContent(template="parts_mail"), get_settings())
    assert channel.twinned
    seen = set()
    for audience in audiences():
        for products in (PRODUCTS, []):
            done = channel.render(audience, NOW, Personal({}, products, {"note": 1}))
            subject, text, html, explanation = alone(channel, audience, products)
            assert done.subject == subject
            assert done.html == html
            # the text part as the message collapses the blank lines its loops repeat
            assert done.text == re.sub(r"\n(?:[ \t]*\n){2,}", "\n\n", text).strip() + "\n"
            assert done.explanation == explanation | {"products": {"note": 1}}
            seen.add(done.explanation["variant"]["name"])  # type: ignore[index]
            assert done.html is not None and "<script>" not in done.html
    assert seen == {"loyal", "new", "default"}


def test_inline_texts_render_as_their_parts_alone_give() -> None:
    content = ChannelContent(
        subject="Pour {{ person.city }}",
        text="Bonjour {{ person.city }} {{ page_link }}",
        html="<p>Bonjour {{ person.city }}</p><a href='{{ page_link }}'>page</a>",
        fields={"city": {"trait": "city", "fallback": "<vous>"}},
    )
    channel = ChannelTemplates("c", "email", content, get_settings())
    assert channel.twinned
    for audience in audiences():
        done = channel.render(audience, NOW, Personal({}, [], {}), page_link="https://x/p?a=1&b=<")
        subject, text, html, explanation = alone(channel, audience, [], "https://x/p?a=1&b=<")
        assert (done.subject, done.text, done.html) == (subject, text, html)
        assert done.explanation == explanation | {"products": {}}


def test_parts_that_are_not_twins_choose_each_their_own() -> None:
    base = TemplateDefinition.model_validate(TEMPLATE | {"format": "text"})
    other = base.model_copy(update={"variants": base.variants[::-1]})
    first, second = CompiledTemplate(base), CompiledTemplate(other)
    assert twins(first, CompiledTemplate(base)) and not twins(first, second)
    loyal = audiences()[1]
    parts = [(first, True), (second, True)]
    done = render_parts(parts, loyal, now=NOW, context=None, products=PRODUCTS, links=None,
                        chosen=None, twinned=False)  # fmt: skip
    assert [d.variant for d in done] == ["loyal", "default"]
    assert [d.body for d in done] == [
        render(c, loyal, now=NOW, products=PRODUCTS).body for c in (first, second)
    ]
