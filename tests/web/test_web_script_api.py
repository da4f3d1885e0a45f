"""The web routes as an attacker sees them: a public key that decides and reports for its own
visitor alone, from its own origins, never reading; on a real server and store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from web_helpers import CUSTOMER, FIRST_NAME, Shop, shop_server

from surmesure.api.app import create_app
from surmesure.config import Settings
from surmesure.errors import ConfigError
from surmesure.protect.keys import create_key
from surmesure.store import Store, schema
from surmesure.web import answer
from surmesure.web.identity import (
    MAX_USER_SECONDS,
    anonymous_secret,
    new_anonymous,
    read_anonymous,
    read_user,
    sign_user,
)
from surmesure.web.script import current


@pytest.fixture(scope="module")
def shop(migrated_duckdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("web_api")
    with shop_server(migrated_duckdb, folder, web_new_visitor_rate_limit="1000/second") as running:
        yield running


def _banner(answer: httpx.Response) -> dict[str, object]:
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()["placements"][0]
    return found


def test_an_anonymous_visitor_gets_a_signed_id_and_only_what_the_page_shows(shop: Shop) -> None:
    first = shop.decide({"placements": ["home_banner"]}, headers={"Origin": shop.base})
    assert first.headers["access-control-allow-origin"] == shop.base
    body = first.json()
    assert set(body) == {"aid", "max_age", "placements"}
    assert body["max_age"] == 395 * 86_400
    shown = body["placements"][0]
    assert set(shown) == {"placement", "decision_id", "content_id", "html", "offers", "products"}
    assert shown["html"] in ("Bonjour !", "Bonsoir !")  # nobody known: the neutral variant
    text = first.text
    for private in ("explanation", "person_id", "known", "reason", "context", "threshold"):
        assert private not in text, private
    # the id is kept: the same visitor comes back with it
    again = shop.decide({"aid": body["aid"], "placements": ["home_banner"]}).json()
    assert again["aid"] == body["aid"]
    shop.app.state.serving.flush()  # decisions are written behind
    with shop.store.connect() as conn:
        logged = conn.execute(sa.select(sa.func.count()).select_from(schema.decisions)).scalar_one()
    assert logged >= 1  # the decision is kept with its explanation, on the server


def test_a_forged_or_unsigned_anonymous_id_is_replaced_never_used(shop: Shop) -> None:
    secret = anonymous_secret(shop.app.state.settings.secret_key)
    real_id, cookie = new_anonymous(secret)
    assert read_anonymous(secret, cookie) == real_id
    forged = [real_id, f"{real_id}.", f"{real_id}.{'A' * 43}", cookie[:-1] + "B", "x" * 600]
    for value in forged:
        got = shop.decide({"aid": value, "placements": ["home_banner"]})
        if value == "x" * 600:
            assert got.status_code == 400 and got.json()["error"]["field"] == "aid"
            continue
        issued = got.json()["aid"]
        assert issued != value and not issued.startswith(real_id + ".")
        assert read_anonymous(secret, issued) is not None
    # nor can it report events
    refused = shop.events({"aid": real_id + ".forged", "events": [_view("0" * 32)]})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "aid"


def test_a_signed_user_gets_their_own_content_a_bad_signature_the_anonymous_one(
    shop: Shop,
) -> None:
    good = sign_user(shop.identity_secret, CUSTOMER, seconds=600)
    mine = _banner(shop.decide({"user": good, "placements": ["home_banner"]}))
    assert FIRST_NAME in str(mine["html"])
    now = time.time()
    other_key = sign_user("a secret of another key", CUSTOMER, seconds=600)
    expired = sign_user(shop.identity_secret, CUSTOMER, seconds=60, now=now - 120)
    too_long = _signed(shop.identity_secret, CUSTOMER, int(now) + MAX_USER_SECONDS + 3600)
    customer, expiry, signature = good.rsplit(".", 2)
    tampered = f"C-1.{expiry}.{signature}"
    for token in (other_key, expired, too_long, tampered, f"{CUSTOMER}", f"{CUSTOMER}.1.2"):
        assert read_user(shop.identity_secret, token) is None
        shown = _banner(shop.decide({"user": token, "placements": ["home_banner"]}))
        assert FIRST_NAME not in str(shown["html"]), token
    assert customer == CUSTOMER


def _signed(secret: str, customer_id: str, expiry: int) -> str:
    import hashlib
    import hmac

    signed = f"{customer_id}.{expiry}"
    return f"{signed}.{hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()}"


def test_the_body_cannot_name_a_person(shop: Shop) -> None:
    for field, value in (("person_id", 1), ("customer_id", CUSTOMER), ("anonymousId", "a1"),
                         ("userId", CUSTOMER)):  # fmt: skip
        got = shop.decide({field: value, "placements": ["home_banner"]})
        assert got.status_code == 400, field
        assert got.json()["error"]["field"] == field
        assert FIRST_NAME not in got.text
    # an event naming someone else is refused whole, nothing stored for anyone
    aid = shop.decide({"placements": ["home_banner"]}).json()["aid"]
    naming = shop.events({"aid": aid, "userId": CUSTOMER, "events": [_view("1" * 32)]})
    assert naming.status_code == 400 and naming.json()["error"]["field"] == "userId"
    inner = shop.events({"aid": aid, "events": [{**_view("2" * 32), "userId": CUSTOMER}]})
    assert inner.status_code == 400 and inner.json()["rejected"][0]["field"] == "events[0].userId"
    with shop.store.connect() as conn:
        kept = conn.execute(
            sa.select(schema.quarantine.c.field).where(
                schema.quarantine.c.field == "events[0].userId"
            )
        ).all()
    assert kept  # the bad record is in the quarantine with its place


def test_the_web_key_reads_nothing_and_decides_for_nobody_else(shop: Shop) -> None:
    auth = (shop.key, "")
    calls = [
        ("POST", "/v1/decide", {"placement": "home_banner", "customer_id": CUSTOMER}),
        ("POST", "/v1/decide", {"placement": "home_banner", "person_id": 1}),
        ("GET", "/v1/people/1/why", None),
        ("GET", "/v1/people/1/segments", None),
        ("GET", "/v1/people/1/consents", None),
        ("POST", "/v1/pages/links", {"person": "1"}),
        ("GET", "/v1/experiments/x/results", None),
    ]
    for method, path, body in calls:
        got = httpx.request(method, shop.base + path, json=body, auth=auth, timeout=30)
        assert got.status_code == 403, (path, got.text)
        assert FIRST_NAME not in got.text
    # it does not collect either, unless the key also has collect: a track naming the customer
    track = {"messageId": "w1", "userId": CUSTOMER, "event": "Order Completed"}
    refused = httpx.post(f"{shop.base}/v1/track", json=track, auth=auth, timeout=30)
    assert refused.status_code == 403


def test_a_web_key_goes_with_no_private_scope_and_origins_read() -> None:
    from surmesure.errors import InvalidInput
    from surmesure.protect.keys import check_origins, check_scopes

    for scopes in (["web", "read"], ["web", "decide"], ["web", "admin"], ["web", "calls"]):
        with pytest.raises(InvalidInput, match="public pages"):
            check_scopes(scopes)
    assert check_scopes(["collect", "web"]) == ["collect", "web"]
    assert check_origins(["https://Shop.example/", "http://127.0.0.1:8080"]) == [
        "http://127.0.0.1:8080",
        "https://shop.example",
    ]
    for bad in ("shop.example", "https://shop.example/home", "ftp://x", "https://u@shop.example"):
        with pytest.raises(InvalidInput, match="not a page origin"):
            check_origins([bad])


def test_a_foreign_origin_is_refused_and_gets_no_cors(shop: Shop) -> None:
    for origin in ("https://evil.example", "null", shop.base.replace("127.0.0.1", "localhost")):
        got = shop.decide({"placements": ["home_banner"]}, headers={"Origin": origin})
        assert got.status_code == 403 and got.json()["error"]["field"] == "origin"
        assert "access-control-allow-origin" not in got.headers
        events = shop.events({"aid": "x", "events": [_view("3" * 32)]}, headers={"Origin": origin})
        assert events.status_code == 403
    # a key stored without origins is refused to every page
    bare = create_key(shop.store, "bare", ["web"], source="web")[0]
    got = httpx.post(f"{shop.base}/v1/web/decide", json={"key": bare, "placements": ["x"]},
                     headers={"Origin": shop.base}, timeout=30)  # fmt: skip
    assert got.status_code == 403


def test_keys_and_bodies_are_checked_before_anything_is_decided(shop: Shop) -> None:
    base = shop.base
    assert (
        httpx.post(f"{base}/v1/web/decide", json={"placements": ["home_banner"]}).status_code == 401
    )
    unknown = httpx.post(f"{base}/v1/web/decide", json={"key": "sm_x", "placements": ["a"]})
    assert unknown.status_code == 401
    huge = shop.decide({"placements": ["home_banner"], "context": {"page": "/" + "x" * 20_000}})
    assert huge.status_code == 413
    many = shop.decide({"placements": [f"p{i}" for i in range(11)]})
    assert many.status_code == 400 and many.json()["error"]["field"] == "placements"
    hostile = shop.decide({"placements": ["<script>"]})
    assert hostile.status_code == 400
    # an e-mail's content is not a page's to see; an unknown placement keeps the page's default
    other = shop.decide({"placements": ["welcome_email", "nowhere"]}).json()["placements"]
    assert [p["html"] for p in other] == [None, None]


def test_views_and_clicks_land_for_the_verified_identity_once(shop: Shop) -> None:
    user = sign_user(shop.identity_secret, CUSTOMER, seconds=600)
    answer = shop.decide({"user": user, "placements": ["home_banner"]}).json()
    decision = answer["placements"][0]["decision_id"]
    click = {**_view(decision), "type": "click", "url": "https://shop.example/collection"}
    body = {"aid": answer["aid"], "user": user, "events": [_view(decision), click]}
    first = shop.events(body)
    again = shop.events(body)  # the page sent it twice
    assert first.json() == {"success": True, "accepted": 2, "duplicate": 0}
    assert again.json()["accepted"] == 0 and again.json()["duplicate"] == 2
    e, i = schema.events, schema.identifiers
    with shop.store.connect() as conn:
        rows = conn.execute(
            sa.select(e.c.event, e.c.person_id).where(e.c.event.like("Promotion %"))
        ).all()
        customer = conn.execute(
            sa.select(i.c.person_id).where(i.c.kind == "customer_id")
        ).scalar_one()
    assert sorted(r.event for r in rows) == ["Promotion Clicked", "Promotion Viewed"]
    assert {r.person_id for r in rows} == {customer}  # the customer's, not a claim


def test_a_visitor_has_a_rate_limit_of_their_own(migrated_duckdb: Path, tmp_path: Path) -> None:
    limits = {"web_visitor_rate_limit": "3/minute", "web_new_visitor_rate_limit": "3/minute"}
    with shop_server(migrated_duckdb, tmp_path, **limits) as limited:
        aid = limited.decide({"placements": ["home_banner"]}).json()["aid"]
        codes = [limited.decide({"aid": aid, "placements": ["home_banner"]}).status_code
                 for _ in range(4)]  # fmt: skip
        new = [limited.decide({"placements": ["home_banner"]}).status_code for _ in range(2)]
        over = limited.decide({"aid": aid, "placements": ["home_banner"]})
    assert codes == [200, 200, 200, 429]
    # no identity yet: counted by address, with the first call and the warming one
    assert new == [200, 429]
    assert over.status_code == 429 and 1 <= int(over.headers["Retry-After"]) <= 60


def test_the_script_is_served_small_with_a_long_cache_and_an_etag(shop: Shop) -> None:
    found = current()
    plain = httpx.get(f"{shop.base}/web/surmesure.js")
    versioned = httpx.get(f"{shop.base}/web/surmesure.js", params={"v": found.version})
    again = httpx.get(
        f"{shop.base}/web/surmesure.js", headers={"If-None-Match": plain.headers["etag"]}
    )
    assert plain.status_code == 200 and plain.content == found.text
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "immutable" in versioned.headers["cache-control"]
    assert "immutable" not in plain.headers["cache-control"]
    assert again.status_code == 304 and not again.content
    assert len(found.text) < 12_000 and b"http" not in found.text.replace(b"https:", b"")


def _view(decision_id: str) -> dict[str, str]:
    return {"type": "view", "placement": "home_banner", "decision_id": decision_id}


def test_a_page_is_answered_its_share_alone() -> None:
    decided = {
        "decision_id": "d" * 32,
        "person_id": 7,
        "known": True,
        "content": {"content_id": "home_banner/evening", "body": "Bonjour Camille !",
                    "subject": "", "template": "home_banner", "variant": "evening"},
        "offers": [{"content_id": "spring_sale", "title": "Soldes", "text": "-30 %",
                    "expires_at": None}],
        "products": [{"product_code": "P1", "name": "Nappe", "category": "linge", "price": 30.0,
                      "score": 0.9, "reason": "bought with P7 last week"}],
        "context": {"nearest_store": {"city": "Lyon"}},
        "explanation": {"person": "person 7"},
    }  # fmt: skip
    assert answer.shown("home_banner", decided) == {
        "placement": "home_banner",
        "decision_id": "d" * 32,
        "content_id": "home_banner/evening",
        "html": "Bonjour Camille !",
        "offers": [{"content_id": "spring_sale", "title": "Soldes", "text": "-30 %"}],
        "products": [{"product_code": "P1", "name": "Nappe", "category": "linge", "price": 30.0}],
    }
    held = answer.shown("home_banner", {**decided, "content": None, "offers": [], "products": []})
    assert held["html"] is None and held["content_id"] is None


def test_a_shop_folder_that_is_not_one_is_refused_at_start(
    duckdb_store: Store, tmp_path: Path
) -> None:
    settings = Settings(database_url=duckdb_store.url, secret_key="s", write_keys={},
                        shop_dir=tmp_path / "none")  # fmt: skip
    with pytest.raises(ConfigError, match="SURMESURE_SHOP_DIR"):
        create_app(settings, duckdb_store)
