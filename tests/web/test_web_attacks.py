"""Attacks on the web script's routes, each kept as a test: a body that smuggles a person in
any spelling, a signed user cut, expired or signed with another key's secret, an anonymous id
replayed by someone else, a page of a look-alike origin, a revoked key, forged ids rotated to
dodge the visitor's limit, junk events, and a web template that prints a customer's words
unescaped. The script's own HTML sanitizer is attacked in Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser
from web_helpers import BUDGET_MS, CUSTOMER, FIRST_NAME, Shop, shop_server

from surmesure.errors import InvalidInput
from surmesure.protect.keys import check_origins, create_key, revoke_key
from surmesure.store import schema
from surmesure.web.identity import key_identity_secret, read_user, sign_user
from surmesure.web.shop import shop_page

#: a customer whose first name, collected from anyone, is markup that would run in a page
HOSTILE_NAME = (
    '<svg><a><set attributeName="href" to="javascript:window.pwned=1"></set>'
    '<text y="20">go</text></a></svg><img src=x onerror="window.pwned=2">'
)
HOSTILE_CUSTOMER = "C-666"
#: a web template written as plain text: it prints the first name as it is
TEXT_BANNER = """name: text_banner
placement: text_banner
channel: web
format: text
fields:
  first_name: {trait: first_name, fallback: ""}
variants:
  - name: default
    body: "Bonjour {{ person.first_name }}"
"""
#: a banner whose own text animates a link into javascript: (SVG <set>, <animate>)
SVG_BANNER = """name: svg_banner
placement: svg_banner
channel: web
format: html
variants:
  - name: default
    body: >-
      <svg width="200" height="60"><a><set attributeName="href" to="javascript:window.pwned=3"/>
      <animate attributeName="href" values="javascript:window.pwned=4"/>
      <text x="10" y="30" id="go">go</text></a></svg>
      <template><img src="x" onerror="window.pwned = 5"></template>
"""
PLACEMENTS = {"placements": ["home_banner"]}


@pytest.fixture(scope="module")
def shop(migrated_duckdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("web_attacks")
    templates = {"text_banner.yaml": TEXT_BANNER, "svg_banner.yaml": SVG_BANNER}
    with shop_server(
        migrated_duckdb, folder, templates=templates, web_new_visitor_rate_limit="1000/second"
    ) as running:
        crm = create_key(running.store, "crm2", ["collect"], source="crm")[0]
        known = httpx.post(
            f"{running.base}/v1/identify",
            json={"messageId": "crm-666", "userId": HOSTILE_CUSTOMER,
                  "traits": {"first_name": HOSTILE_NAME}},
            auth=(crm, ""),
            timeout=30,
        )  # fmt: skip
        assert known.status_code == 200, known.text
        yield running


def _raw(shop: Shop, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{shop.base}/v1/web/decide", content=body, timeout=30,
                      headers={"Content-Type": "text/plain", **headers})  # fmt: skip


def _html(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    return str(answer.json()["placements"][0]["html"])


def test_a_person_smuggled_in_any_spelling_is_refused(shop: Shop) -> None:
    smuggled: list[tuple[dict[str, Any], str]] = [
        ({"context": {"customer_id": CUSTOMER}}, "context.customer_id"),
        ({"context": {"traits": {"customer_id": CUSTOMER}}}, "context.traits"),
        ({"Customer_Id": CUSTOMER}, "Customer_Id"),
        ({"USERID": CUSTOMER}, "USERID"),
        ({"\uff55serId": CUSTOMER}, "\uff55serId"),  # a full-width u
        ({"user_id": CUSTOMER}, "user_id"),
        ({"user": {"customer_id": CUSTOMER}}, "user"),
        ({"aid": ["a", "b"]}, "aid"),
    ]
    for extra, field in smuggled:
        got = shop.decide({**PLACEMENTS, **extra})
        assert got.status_code == 400, extra
        assert got.json()["error"]["field"] == field
        assert FIRST_NAME not in got.text
    # a duplicate key: the JSON reader keeps the last, and a bare id there is no proof
    twice = f'{{"key": "{shop.key}", "user": "{CUSTOMER}", "user": "{CUSTOMER}.9999999999.00",'
    got = _raw(shop, twice.encode() + b' "placements": ["home_banner"]}')
    assert FIRST_NAME not in _html(got)


def test_a_signed_user_holds_only_as_signed_for_its_key_and_until_it_expires(shop: Shop) -> None:
    good = sign_user(shop.identity_secret, CUSTOMER, seconds=600)
    assert FIRST_NAME in _html(shop.decide({**PLACEMENTS, "user": good}))
    expired = sign_user(shop.identity_secret, CUSTOMER, seconds=60, now=time.time() - 120)
    other_key = create_key(shop.store, "other shop", ["web"], source="web")[1]["key_id"]
    secret = shop.app.state.settings.secret_key
    foreign = sign_user(key_identity_secret(secret, other_key), CUSTOMER, seconds=600)
    server = sign_user(secret, CUSTOMER, seconds=600)  # the server's own secret is no proof
    customer, expiry, signature = good.rsplit(".", 2)
    longer = f"{customer}.{int(expiry) + 86_400}.{signature}"
    for bad in (expired, foreign, server, longer, f"{CUSTOMER}.{expiry}", good.lower()):
        html = _html(shop.decide({**PLACEMENTS, "user": bad}))
        assert FIRST_NAME not in html, bad
    # the signature's hex is read in either case; the customer id never changes case
    assert FIRST_NAME in _html(shop.decide({**PLACEMENTS, "user": good[:-64] + signature.upper()}))
    # a customer id may hold the separator: it is read back whole, never as another id
    dotted = sign_user(shop.identity_secret, "A.1.B", seconds=600)
    assert read_user(shop.identity_secret, dotted) == "A.1.B"
    assert read_user(shop.identity_secret, dotted.replace("A.1.B.", "A.1.", 1)) is None
    assert read_user(shop.identity_secret, "A." + dotted) is None


def test_a_replayed_anonymous_id_is_that_visitor_and_never_a_customer(shop: Shop) -> None:
    # the customer's browser, logged in: its anonymous id goes with their events
    user = sign_user(shop.identity_secret, CUSTOMER, seconds=600)
    answer = shop.decide({**PLACEMENTS, "user": user}).json()
    aid, decision = answer["aid"], answer["placements"][0]["decision_id"]
    view = {"type": "view", "placement": "home_banner", "decision_id": decision}
    assert shop.events({"aid": aid, "user": user, "events": [view]}).json()["accepted"] == 1
    # the same cookie without the signed user (logged out, or copied): the anonymous visitor
    replayed = shop.decide({**PLACEMENTS, "aid": aid}).json()
    assert replayed["aid"] == aid  # the same anonymous visitor, as the cookie is theirs
    assert FIRST_NAME not in replayed["placements"][0]["html"]
    # an event under the replayed id names the anonymous visitor alone
    assert shop.events({"aid": aid, "events": [view]}).json()["accepted"] == 1
    e = schema.events
    with shop.store.connect() as conn:
        rows = conn.execute(
            sa.select(e.c.user_id, e.c.anonymous_id).where(e.c.event == "Promotion Viewed")
        ).all()
    # the customer's event names them alone: nothing links the cookie to the customer
    assert sorted((r.user_id is not None, r.anonymous_id is not None) for r in rows) == [
        (False, True),
        (True, False),
    ]


def test_look_alike_origins_are_refused_and_cors_never_opens_to_all(shop: Shop) -> None:
    port = shop.base.rsplit(":", 1)[1]
    for origin in (
        "null",
        f"{shop.base}.evil.example",
        f"{shop.base}/",
        f"{shop.base}0",
        shop.base.replace(f":{port}", f":{int(port) + 1}"),
        shop.base.replace("http://", "https://"),
        shop.base.replace("127.0.0.1", "127.0.0.1.nip.io"),
        "*",
    ):
        got = shop.decide(PLACEMENTS, headers={"Origin": origin})
        assert got.status_code == 403, origin
        assert "access-control-allow-origin" not in got.headers
    # the origin's case is not its identity: the page's own origin, as sent, comes back
    shouting = shop.base.upper()
    got = shop.decide(PLACEMENTS, headers={"Origin": shouting})
    assert got.status_code == 200
    assert got.headers["access-control-allow-origin"] == shouting
    assert "access-control-allow-credentials" not in got.headers
    assert got.headers["vary"] == "Origin" and "no-store" in got.headers["cache-control"]


def test_origins_are_stored_as_browsers_send_them() -> None:
    # a browser's Origin has no default port and its host in ASCII: stored so, they match
    assert check_origins(
        ["https://Shop.example:443/", "http://shop.example:80", "https://bücher.example",
         "http://[::1]:8080", "https://shop.example:8443"]
    ) == [
        "http://[::1]:8080", "http://shop.example", "https://shop.example",
        "https://shop.example:8443", "https://xn--bcher-kva.example",
    ]  # fmt: skip
    for bad in ("https://shop.example:abc", "https://shop.example:99999", "null", "file:///x"):
        with pytest.raises(InvalidInput, match="not a page origin"):
            check_origins([bad])


def test_a_revoked_web_key_stops_at_the_next_reload(shop: Shop) -> None:
    key, row = create_key(shop.store, "short lived", ["web"], source="web", origins=[shop.base])
    body = {"key": key, **PLACEMENTS}
    assert httpx.post(f"{shop.base}/v1/web/decide", json=body, timeout=30).status_code == 200
    revoke_key(shop.store, row["key_id"])
    shop.app.state.keys.reload()  # what the server does every SURMESURE_KEY_REFRESH seconds
    gone = httpx.post(f"{shop.base}/v1/web/decide", json=body, timeout=30)
    assert gone.status_code == 401 and gone.json()["error"]["field"] == "key"


def test_rotating_forged_ids_counts_against_the_address(migrated_duckdb: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    limits = {"web_visitor_rate_limit": "100/minute", "web_new_visitor_rate_limit": "3/minute"}
    with shop_server(migrated_duckdb, tmp_path, **limits) as limited:
        real = limited.decide(PLACEMENTS).json()["aid"]
        ident, _, _ = real.partition(".")
        codes = [
            limited.decide({**PLACEMENTS, "aid": f"{ident[:-2]}{i:02d}.{'x' * 43}"}).status_code
            for i in range(3)
        ]
        # a visitor whose id holds is counted as themselves, not as the address
        mine = limited.decide({**PLACEMENTS, "aid": real})
    assert codes == [200, 429, 429]  # the warming call and the first took the address's 3
    assert mine.status_code == 200


def test_junk_events_are_quarantined_and_good_ones_kept(shop: Shop) -> None:
    answer = shop.decide(PLACEMENTS).json()
    aid, decision = answer["aid"], answer["placements"][0]["decision_id"]
    view = {"type": "view", "placement": "home_banner", "decision_id": decision}
    junk: list[Any] = [
        5,
        "view",
        None,
        {**view, "properties": {"userId": CUSTOMER}},
        {**view, "type": "purchase"},
        {**view, "decision_id": "../" * 10},
        {**view, "placement": "x" * 65},
    ]
    got = shop.events({"aid": aid, "events": [*junk, view]})
    assert got.status_code == 200, got.text
    payload = got.json()
    assert payload["accepted"] == 1 and payload["success"] is False
    assert [r["index"] for r in payload["rejected"]] == list(range(len(junk)))
    assert payload["rejected"][3]["field"] == "events[3].properties"
    q = schema.quarantine
    with shop.store.connect() as conn:
        kept = conn.execute(
            sa.select(q.c.field, q.c.payload, q.c.sealed).where(q.c.field.like("events[%"))
        ).all()
    fields = {r.field for r in kept}
    assert {f"events[{i}]" for i in range(3)} <= fields
    assert {"events[3].properties", "events[4].type", "events[5].decision_id"} <= fields
    assert all(r.payload is not None or r.sealed is not None for r in kept)  # kept, not lost


def test_a_text_web_template_prints_a_customers_words_as_text(shop: Shop) -> None:
    user = sign_user(shop.identity_secret, HOSTILE_CUSTOMER, seconds=600)
    got = shop.decide({"placements": ["text_banner"], "user": user})
    html = _html(got)
    assert "<svg" not in html and "<img" not in html
    assert html == "Bonjour " + HOSTILE_NAME.replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;"
    ).replace('"', "&#34;").replace("'", "&#39;")


def test_the_script_takes_out_animated_links_and_inert_templates(
    shop: Shop, chromium: Browser
) -> None:
    (shop.folder / "svg.html").write_text(
        shop_page(shop.key, placement="svg_banner", budget_ms=BUDGET_MS), "utf-8"
    )
    page = chromium.new_context(base_url=shop.base).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/shop/svg.html")
    found = page.wait_for_selector("[data-surmesure-state]", timeout=15_000)
    assert found is not None and found.get_attribute("data-surmesure-state") == "filled"
    page.click("#go")
    page.wait_for_timeout(300)
    assert page.evaluate("window.pwned") is None
    html = found.inner_html()
    for left in ("<set", "<animate", "javascript:", "<template", "onerror"):
        assert left not in html, left
    assert errors == []
    page.context.close()


def test_a_broken_cookie_gets_a_new_id_and_the_page_is_still_filled(
    shop: Shop, chromium: Browser
) -> None:
    context = chromium.new_context(base_url=shop.base)
    # a value no URI decoding reads, as a sibling subdomain could toss at the shop's pages
    context.add_cookies([{"name": "sm_aid", "value": "%E0%A4%A", "url": shop.base}])
    page = context.new_page()
    page.goto("/shop/")
    found = page.wait_for_selector("[data-surmesure-state]", timeout=15_000)
    assert found is not None and found.get_attribute("data-surmesure-state") == "filled"
    [kept] = [c for c in context.cookies() if c["name"] == "sm_aid"]
    assert kept["value"] != "%E0%A4%A" and len(kept["value"].split(".")[0]) == 22
    context.close()
