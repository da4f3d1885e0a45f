"""Templates read derived metrics and recommendations the same way in ``surmesure render``,
``POST /v1/decide`` and a campaign's message, with the same reliability-gated fallbacks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import api_helpers
import httpx
import orjson
import pytest
import typer
from babel.numbers import format_currency
from campaign_world import add_people, consent, document, email_of
from import_helpers import write_file
from smtp_sink import Sink, start
from typer.testing import CliRunner

from surmesure.cli import render as render_cli
from surmesure.clock import utcnow
from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.decide.library import Library
from surmesure.decide.recommend.model import clear_cache
from surmesure.decide.recommend.service import recommend
from surmesure.decide.service import DecideRequest, decide
from surmesure.deliver import documents, service
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.store import Store, schema

DAY = timedelta(days=1)
TEMPLATE = """
name: loyalty_mail
placement: email_loyalty
channel: email
format: text
locale: fr
currency: EUR
min_reliability: 0.5
fields:
  first_name: {trait: first_name, fallback: ""}
  points: {metric: points, fallback: 0}
  tier: {metric: clv_tier, fallback: "member"}
  best: {metric: best_channel, fallback: "any"}
  top: {metric: top_category, fallback: "our shop"}
  value: {metric: expected_value, fallback: "?"}
variants:
  - name: default
    subject: "{{ person.points }} points"
    body: |
      points={{ person.points }} tier={{ person.tier }} best={{ person.best }}
      top={{ person.top }} value={{ person.value }}
      {% for p in products %}
      * {{ p.name }} {{ p.price|money(currency) }}
      {% else %}
      nothing to recommend
      {% endfor %}
"""
PRODUCTS = {
    "A": ("Mug", "kitchen", 8.0),
    "B": ("Tea", "grocery", 4.0),
    "C": ("Spoon", "kitchen", 3.5),
    "D": ("Candle", "decor", 12.0),
    "E": ("Vase", "decor", 20.0),
    "F": ("Plate", "kitchen", 9.0),
    "G": ("Frame", "decor", 15.0),
    "H": ("Bowl", "kitchen", 7.25),
}
#: (customer, products bought) one order each, well before now
ORDERS = [("C1", "AB"), ("C2", "AC"), ("C3", "ABD"), ("C4", "EGH"), ("C1", "F")]
runner = CliRunner()


def world(store: Store, folder: Path) -> dict[int, int]:
    """C1 with fresh metrics, C2 with none, C3 with metrics derived long ago, C4 refusing
    personalization; everyone bought something."""
    ids = add_people(store, folder, 4)
    products = [
        {"product_code": c, "name": n, "category": k, "price": p}
        for c, (n, k, p) in PRODUCTS.items()
    ]
    import_file(store, "products", write_file(folder, "products", "csv", products))
    bought = utcnow() - 40 * DAY
    lines = [
        {
            "order_id": f"o{n}",
            "customer_id": customer,
            "ordered_at": (bought + n * DAY).isoformat(sep=" ", timespec="seconds"),
            "product_code": code,
            "quantity": 1,
            "unit_price": PRODUCTS[code][2],
        }
        for n, (customer, codes) in enumerate(ORDERS)
        for code in codes
    ]
    import_file(store, "orders", write_file(folder, "orders", "csv", lines))
    now = utcnow()
    with store.begin() as conn:
        for i, monetary, value, days in ((1, 123.7, 450.0, 1), (3, 80.0, 1500.0, 400)):
            at = now - days * DAY
            conn.execute(
                schema.derived_metrics.insert().values(
                    person_id=ids[i], computed_on=at.date(), computed_at=at, as_of=at.date(),
                    monetary=monetary, expected_value=value, best_channel="email",
                    top_category_1="kitchen", horizon_days=365, discount_rate=0.1,
                    window_days=365,
                )
            )  # fmt: skip
    consent(store, ids[4], "personalization", "email", False, now - DAY)
    return ids


def expected_products(store: Store, person_id: int | None) -> list[str]:
    """The recommendation service's own list, asked one person at a time."""
    currency = [
        f"* {r.name} {format_currency(r.price, 'EUR', locale='fr')}"
        for r in recommend(store, person_id, k=4)
    ]
    return currency or ["nothing to recommend"]


def lines_of(body: str) -> list[str]:
    return [line.strip() for line in body.strip().splitlines() if line.strip()]


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "loyalty_mail.yaml").write_text(TEMPLATE)
    monkeypatch.setenv("SURMESURE_TEMPLATES_DIR", str(folder))
    get_settings.cache_clear()
    clear_cache()
    yield folder
    get_settings.cache_clear()
    clear_cache()


def rendered(store: Store, monkeypatch: pytest.MonkeyPatch, customer: str) -> dict[str, Any]:
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    app = typer.Typer()
    render_cli.register(app)
    get_settings.cache_clear()
    result = runner.invoke(
        app, ["render", "loyalty_mail", "--person", f"customer_id:{customer}", "--json"]
    )
    assert result.exit_code == 0, result.output
    return dict(orjson.loads(result.stdout))


def decided(store: Store, customers: list[str]) -> dict[str, dict[str, Any]]:
    key = api_helpers.server_key(store, "decide")
    out = {}
    with api_helpers.serving(store) as (base, _):
        for customer in customers:
            answer = httpx.post(
                f"{base}/v1/decide",
                json={"customer_id": customer, "placement": "email_loyalty"},
                auth=(key, ""),
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            out[customer] = answer.json()
    return out


def sent(store: Store, folder: Path) -> dict[str, str]:
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = start(port, sink)
    try:
        doc = document(
            channels={"email": {"template": "loyalty_mail"}}, policy={"order": ["email"]}
        )
        documents.save(store, documents.parse(doc), utcnow())
        channel = EmailChannel(
            EmailSettings(port=port, sender="news@example.com", pool=1),
            UnsubscribeLinks("https://shop.example", "s" * 32),
        )
        service.send(store, "spring", utcnow(), channels={"email": channel}, folder=folder)
        channel.close()
    finally:
        controller.stop()
    return {str(m["To"]): str(m.get_body(("plain",)).get_content()) for m in sink.messages()}


def test_metrics_and_recommendations_render_alike_everywhere(
    store: Store, tmp_path: Path, templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = world(store, tmp_path)
    customers = ["C1", "C2", "C3", "C4"]
    cli = {c: rendered(store, monkeypatch, c) for c in customers}
    api = decided(store, customers)
    compiled = Library(templates).named("loyalty_mail")
    # in process, without the server's serving view: the one-statement reader
    direct = {
        c: decide(store, DecideRequest("email_loyalty", customer_id=c), compiled) for c in customers
    }
    mails = sent(store, tmp_path)

    heads = {
        # fresh metrics: 123.7 spent gives 123 points; 450 reaches silver (300), not gold
        "C1": ["points=123 tier=silver best=email", "top=kitchen value=450"],
        # no derived row: every metric field falls back
        "C2": ["points=0 tier=member best=any", "top=our shop value=?"],
        # derived 400 days ago: 0.5 ** (400 / 60) is under the threshold
        "C3": ["points=0 tier=member best=any", "top=our shop value=?"],
        # refused personalization on e-mail: neutral, popular products
        "C4": ["points=0 tier=member best=any", "top=our shop value=?"],
    }
    for n, customer in enumerate(customers, start=1):
        person = ids[n]
        products = expected_products(store, None if customer == "C4" else person)
        want = [*heads[customer], *products]
        assert lines_of(cli[customer]["body"]) == want, customer
        assert lines_of(api[customer]["content"]["body"]) == want, customer
        assert lines_of(direct[customer]["content"]["body"]) == want, customer
        assert lines_of(mails[email_of(n)]) == want, customer
        assert cli[customer]["subject"] == api[customer]["content"]["subject"]
    # personal recommendations differ from the neutral (popular) list for who bought
    assert expected_products(store, ids[1]) != expected_products(store, None)
    assert len(expected_products(store, ids[1])) == 4

    why = {f["field"]: f for f in cli["C1"]["explanation"]["fields"]}
    assert why["tier"]["used"] and why["tier"]["source"] == "derive"
    assert why["tier"]["effective_reliability"] == pytest.approx(0.5 ** (1 / 60), abs=1e-3)
    stale = {f["field"]: f for f in cli["C3"]["explanation"]["fields"]}
    assert stale["tier"]["reason"] == "unreliable"
    missing = {f["field"]: f for f in cli["C2"]["explanation"]["fields"]}
    assert missing["tier"]["reason"] == "missing" and missing["first_name"]["used"]
    assert api["C4"]["explanation"]["products"]["personalized"] is False
    assert cli["C4"]["explanation"]["products"]["personalized"] is False


def test_with_nothing_to_recommend_the_neutral_block_renders_everywhere(
    store: Store, tmp_path: Path, templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_people(store, tmp_path, 2)  # no catalogue, no orders
    assert recommend(store, None, k=4) == []
    want = ["points=0 tier=member best=any", "top=our shop value=?", "nothing to recommend"]
    api = decided(store, ["C1", "C2"])
    mails = sent(store, tmp_path)
    for n, customer in enumerate(["C1", "C2"], start=1):
        assert lines_of(rendered(store, monkeypatch, customer)["body"]) == want
        assert lines_of(api[customer]["content"]["body"]) == want
        assert lines_of(mails[email_of(n)]) == want


PAGE = "http://127.0.0.1:8000/p/token-of-person-7"


def demo_email(products: list[dict[str, Any]]) -> tuple[str, str]:
    """The demo's e-mail for a person of Lyon with ``products``, as it leaves: the HTML with
    its links through tracking, and the text part."""
    from email import message_from_bytes, policy

    from surmesure.cli.demo_send import CONTENT, FIELDS
    from surmesure.decide.content import Audience, Known
    from surmesure.decide.personal import Personal
    from surmesure.deliver.channel import Message
    from surmesure.deliver.content import ChannelTemplates
    from surmesure.domain.campaigns import ChannelContent

    content = ChannelContent.model_validate(CONTENT["email"] | {"fields": FIELDS})
    templates = ChannelTemplates("demo_email", "email", content, get_settings())
    now = utcnow()
    audience = Audience(person_id=7, traits={"city": Known("Lyon", "crm", 0.9)})
    note = {"personalized": True, "reason": "recommended for this person"}
    done = templates.render(audience, now, Personal({}, products, note), PAGE)
    channel = EmailChannel(
        EmailSettings(sender="news@example.com", track=True),
        UnsubscribeLinks("https://shop.example", "s" * 32),
    )
    data = channel.build(
        Message("m1", "email", "a@example.org", done.text, done.subject, done.html, person_id=7)
    )
    channel.close()
    assert isinstance(data, bytes)
    mail = message_from_bytes(data, policy=policy.default)
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return html, done.text


def test_the_demo_email_shows_four_products_or_a_neutral_block() -> None:
    products = [
        {"product_code": f"P{i}", "name": f"Produit {i}", "price": 10.5 * i} for i in range(1, 5)
    ]
    html, text = demo_email(products)
    for p in products:
        price = format_currency(p["price"], "EUR", locale="fr")
        assert f"{p['name']}</a> : {price}" in html
        assert f"- {p['name']} : {price}" in text
        assert f"https://shop.example.com/p/{p['product_code']}" in text
        # in the HTML the product's link goes through click tracking
        assert f"https://shop.example.com/p/{p['product_code']}" not in html
    # and the person's page link, and the button; the text part prints the page link as it is
    assert html.count("https://shop.example/t/c/") == len(products) + 2
    assert PAGE not in html and f"page : {PAGE}" in text
    assert "Toute la collection" not in html and "Toute la collection" not in text
    html, text = demo_email([])
    assert "Toute la collection vous attend" in html and "Toute la collection" in text
    assert "Choisis pour vous" not in html and html.count("https://shop.example/t/c/") == 2


HTML_TEMPLATE = """
name: shop_mail
placement: email_shop
channel: email
format: html
fields:
  city: {trait: city, fallback: "votre ville"}
variants:
  - name: default
    subject: "À {{ person.city }}"
    body: >-
      <mjml><mj-body><mj-section><mj-column>
      <mj-text>Bonjour {{ person.city }} &amp; co</mj-text>
      {% for p in products %}<mj-text>
      <a href="https://shop.example/p/{{ p.product_code }}">{{ p.name }}</a>
      </mj-text>{% endfor %}
      <mj-button href="https://shop.example/all">Tout voir</mj-button>
      </mj-column></mj-section></mj-body></mjml>
"""


def test_an_mjml_library_template_compiles_once_and_gives_its_text_part(
    templates: Path,
) -> None:
    from surmesure.decide.content import Audience, Known
    from surmesure.decide.personal import Personal
    from surmesure.deliver.content import ChannelTemplates
    from surmesure.domain.campaigns import ChannelContent

    (templates / "shop_mail.yaml").write_text(HTML_TEMPLATE)
    channel = ChannelTemplates("c", "email", ChannelContent(template="shop_mail"), get_settings())
    assert channel.html is not None and channel.html.definition.variants[0].body.startswith(
        "<!doctype html>"
    )  # compiled from MJML when the campaign's content is
    products = [{"product_code": "A1", "name": "Mug <b>"}, {"product_code": "B2", "name": "Tea"}]
    audience = Audience(person_id=1, traits={"city": Known("Lyon", "crm", 0.9)})
    done = channel.render(audience, utcnow(), Personal({}, products, {}))
    assert done.subject == "À Lyon"
    assert done.text == (
        "Bonjour Lyon & co\n\nMug <b> (https://shop.example/p/A1)\n\n"
        "Tea (https://shop.example/p/B2)\n\nTout voir (https://shop.example/all)\n"
    )
    assert done.html is not None and "Mug &lt;b&gt;</a>" in done.html
    assert 'href="https://shop.example/p/B2"' in done.html
