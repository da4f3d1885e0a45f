"""Who may call what: the authorization matrix over every route of the app, key revocation,
rate limits, the refusal to serve with development secrets, page-link lifetimes and the audit
log of personal-data reads. On a real server, on both stores."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, server_key, serving
from itsdangerous import URLSafeTimedSerializer

from surmesure.api.app import create_app
from surmesure.api.auth import RateLimits, routes
from surmesure.clock import utcnow
from surmesure.config import DEV_WRITE_KEY, Settings
from surmesure.decide.pages import SALT, make_token, read_token
from surmesure.errors import ConfigError, InvalidInput, NotFound, TooManyRequests
from surmesure.protect import audit
from surmesure.protect.keys import SCOPES, Principal, revoke_key
from surmesure.store import Store, schema

#: every route of the app and the scope it needs (None: public). A route added without an
#: entry here fails :func:`test_every_route_is_in_the_matrix`.
EXPECTED: dict[tuple[str, str], str | None] = {
    **{("POST", f"/v1/{kind}"): "collect" for kind in ("batch", "identify", "track", "page")},
    **{("POST", f"/v1/{kind}"): "collect" for kind in ("screen", "alias", "group")},
    ("POST", "/v1/decide"): "decide",
    ("POST", "/v1/pages/links"): "decide",
    ("GET", "/v1/people/{person_id}/why"): "read",
    ("GET", "/v1/people/{ref}/segments"): "read",
    ("GET", "/v1/experiments/{name}"): "read",
    ("GET", "/v1/experiments/{name}/results"): "read",
    ("POST", "/v1/consents"): "admin",
    ("POST", "/v1/preferences"): "admin",
    ("GET", "/v1/people/{ref}/consents"): "read",
    ("POST", "/v1/local/run"): "local",
    # a shop's pages: decisions and events for the page's own visitor, from the key's origins
    ("POST", "/v1/web/decide"): "web",
    ("POST", "/v1/web/events"): "web",
    ("GET", "/web/surmesure.js"): None,
    ("GET", "/preferences/{token}"): None,
    ("POST", "/preferences/{token}"): None,
    ("GET", "/health"): None,
    ("GET", "/openapi.json"): None,
    ("GET", "/docs"): None,
    ("GET", "/p/{token}"): None,
    ("POST", "/p/{token}/nps"): None,
    # a video page, its files and events: the signed token is the credential
    ("GET", "/v/player.js"): None,
    ("GET", "/v/{token}"): None,
    ("GET", "/v/{token}/film.mp4"): None,
    ("GET", "/v/{token}/poster.jpg"): None,
    ("GET", "/v/{token}/subtitles.vtt"): None,
    ("POST", "/v/{token}/events"): None,
    # campaigns: the outbox and what it sends are an admin's
    ("PUT", "/v1/campaigns"): "admin",
    ("GET", "/v1/campaigns/{name}"): "admin",
    ("GET", "/v1/campaigns/{name}/preview"): "admin",
    ("POST", "/v1/campaigns/{name}/send"): "admin",
    ("GET", "/v1/campaigns/{name}/status"): "admin",
    ("GET", "/v1/campaigns/{name}/results"): "admin",
    # the call centre reads its call tasks (phone numbers, scripts) and nothing else
    ("POST", "/v1/campaigns/{name}/calls"): "calls",
    ("POST", "/v1/campaigns/{name}/calls/outcomes"): "calls",
    # journeys: their documents, funnels and people are an admin's
    ("GET", "/v1/journeys/schema"): "admin",
    ("PUT", "/v1/journeys"): "admin",
    ("GET", "/v1/journeys/{name}"): "admin",
    ("POST", "/v1/journeys/{name}/{action}"): "admin",
    ("GET", "/v1/journeys/{name}/status"): "admin",
    ("GET", "/v1/journeys/{name}/people/{ref}"): "admin",
    # what a recipient's mail client, phone or provider calls: each checks its own signed token
    # or the webhook key derived from the server's secret (tests/deliver), never an API key
    ("GET", "/t/c/{token}"): None,
    ("GET", "/t/o/{token}.gif"): None,
    ("GET", "/u/{channel}/{token}"): None,
    ("POST", "/u/{channel}/{token}"): None,
    ("POST", "/v1/email/feedback"): None,
    ("GET", "/v1/sms/inbound"): None,
    ("GET", "/v1/sms/reports"): None,
}
SAMPLE = {
    "{person_id}": "1",
    "{ref}": "1",
    "{name}": "welcome",
    "{token}": "not-a-token",
    "{channel}": "email",
}


def _url(path: str) -> str:
    for name, value in SAMPLE.items():
        path = path.replace(name, value)
    return path


#: the console's routes open without a session: signing in and its assets
CONSOLE_PUBLIC = {
    ("GET", "/console"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("GET", "/console/static/{name}"),
}


def _console_routes(store: Store) -> dict[tuple[str, str], str | None]:
    app = create_app(Settings(database_url=store.url, secret_key="s", write_keys={}), store)
    return {(m, p): s for m, p, s in routes(app) if p.startswith("/console")}


def test_every_route_is_in_the_matrix(store: Store) -> None:
    app = create_app(Settings(database_url=store.url, secret_key="s", write_keys={}), store)
    found = {(method, path): scope for method, path, scope in routes(app)}
    api = {route: scope for route, scope in found.items() if not route[1].startswith("/console")}
    assert set(api) == set(EXPECTED), "a route without an expected scope, or one gone"
    assert api == EXPECTED
    # every console page needs a signed-in user (its scope names the role's scope it needs)
    for route, scope in _console_routes(store).items():
        if route in CONSOLE_PUBLIC:
            assert scope is None, route
        else:
            assert scope is not None and scope.split(":")[0] == "console", route


def test_no_api_key_opens_a_console_page(store: Store) -> None:
    keys = [server_key(store, scope) for scope in SCOPES]
    console = {r for r in _console_routes(store) if r not in CONSOLE_PUBLIC}
    assert console
    with serving(store) as (base, _), httpx.Client(base_url=base, timeout=30) as client:
        for method, path in sorted(console):
            for key in (None, WRITE_KEY, *keys):
                got = _call(client, method, path, key)
                if method == "GET":
                    assert got.status_code == 303, (path, got.text)
                    assert got.headers["location"].startswith("/console/login")
                else:
                    assert got.status_code == 401, (method, path, got.text)


def _call(client: httpx.Client, method: str, path: str, key: str | None) -> httpx.Response:
    """One call, as from a client of its own (no cookie kept from another call). The ~600
    calls share ``client``: making one a call would build its TLS context each time."""
    client.cookies.clear()
    auth = (key, "") if key is not None else None
    return client.request(method, _url(path), json={}, auth=auth)


def test_authorization_matrix(store: Store) -> None:
    keys = {scope: server_key(store, scope) for scope in SCOPES}
    revoked = server_key(store, "admin", "read")
    revoke_key(store, "test-admin-read")
    with serving(store) as (base, _), httpx.Client(base_url=base, timeout=30) as client:
        for (method, path), scope in EXPECTED.items():
            if scope is None:
                assert _call(client, method, path, None).status_code not in (401, 403), path
                continue
            if scope == "local":  # the server's own token only: no API key opens it
                for key in (None, "sm_not-a-key", WRITE_KEY, *keys.values()):
                    refused = _call(client, method, path, key)
                    assert refused.status_code == 401, (path, key, refused.text)
                continue
            for key in (None, "sm_not-a-key", revoked):
                refused = _call(client, method, path, key)
                assert refused.status_code == 401, (method, path, key, refused.text)
                assert refused.json()["error"]["code"] == "unauthorized"
            held = [*keys.items(), ("collect", WRITE_KEY)]  # the public write key collects
            for holder, key in held:
                allowed = holder in (scope, "admin")
                got = _call(client, method, path, key)
                if allowed:
                    assert got.status_code not in (401, 403), (method, path, holder, got.text)
                else:
                    assert got.status_code == 403, (method, path, holder, got.text)
                    assert scope in got.json()["error"]["message"]


def test_revoked_key_is_refused_by_a_running_server_and_last_use_recorded(store: Store) -> None:
    key = server_key(store, "read")
    with serving(store, key_refresh_seconds=0.1) as (base, _):
        assert httpx.get(f"{base}/v1/experiments/x", auth=(key, "")).status_code == 404
        revoke_key(store, "test-read")
        deadline = time.monotonic() + 5
        status = 404
        while status != 401 and time.monotonic() < deadline:
            time.sleep(0.05)
            status = httpx.get(f"{base}/v1/experiments/x", auth=(key, "")).status_code
        assert status == 401
    k = schema.api_keys
    with store.connect() as conn:
        row = conn.execute(sa.select(k).where(k.c.name == "test-read")).one()
    assert row.last_used_at is not None and row.revoked_at is not None
    assert key not in {row.secret_hash, row.key_id}  # stored as a hash only


def test_rate_limit_answers_429_with_retry_after(store: Store) -> None:
    key = server_key(store, "decide")
    with serving(store, rate_limits={"decide": "3/minute"}) as (base, _):
        codes = [
            httpx.post(f"{base}/v1/pages/links", json={"person": "999"}, auth=(key, "")).status_code
            for _ in range(4)
        ]
        over = httpx.post(f"{base}/v1/pages/links", json={"person": "999"}, auth=(key, ""))
        # each key and scope has its own count; a key made now works at once
        other = server_key(store, "collect")
        collected = httpx.post(
            f"{base}/v1/track",
            json={"messageId": "m1", "anonymousId": "a1", "event": "Viewed"},
            auth=(other, ""),
        )
    assert codes == [404, 404, 404, 429]
    assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert collected.status_code == 200


def test_a_rate_limit_counts_per_key_and_scope_and_its_window_reopens() -> None:
    limits = RateLimits({"collect": "2/second"})
    shop = Principal("k1", "shop", frozenset({"collect", "decide"}), "web")
    other = Principal("k2", "other shop", frozenset({"collect"}), "web")
    limits.hit(shop, "collect")
    limits.hit(shop, "collect")
    with pytest.raises(TooManyRequests) as over:
        limits.hit(shop, "collect")
    assert over.value.retry_after == 1 and "2 per 1 second" in str(over.value)
    limits.hit(other, "collect")  # another key has its own count
    for _ in range(5):
        limits.hit(shop, "decide")  # a scope without a limit
    time.sleep(1.05)
    limits.hit(shop, "collect")  # a new window
    limits.hit(shop, "collect")
    with pytest.raises(TooManyRequests):
        limits.hit(shop, "collect")


def test_server_refuses_development_secrets_outside_dev_mode(store: Store) -> None:
    with pytest.raises(ConfigError) as refused:
        create_app(Settings(database_url=store.url), store)
    assert "SURMESURE_SECRET_KEY" in refused.value.message
    assert "SURMESURE_WRITE_KEYS" in refused.value.message
    with pytest.raises(ConfigError, match="SURMESURE_WRITE_KEYS"):
        create_app(Settings(database_url=store.url, secret_key="own"), store)
    create_app(Settings(database_url=store.url, dev_mode=True), store)  # accepted


def test_dev_write_key_only_collects_even_in_dev_mode(store: Store) -> None:
    with serving(store, dev_mode=True, write_keys={DEV_WRITE_KEY: "web"}) as (base, _):
        decide = httpx.post(
            f"{base}/v1/decide", json={"person_id": 1, "placement": "x"}, auth=(DEV_WRITE_KEY, "")
        )
        collected = httpx.post(
            f"{base}/v1/track",
            json={"messageId": "m1", "anonymousId": "a1", "event": "Viewed"},
            auth=(DEV_WRITE_KEY, ""),
        )
    assert decide.status_code == 403 and collected.status_code == 200


def test_page_links_have_a_maximum_lifetime() -> None:
    now = utcnow()
    with pytest.raises(InvalidInput, match="1 to 90 days"):
        make_token(1, days=36_500, now=now, secret="s")
    # a token claiming a century, even signed with the right secret, opens nothing
    century = URLSafeTimedSerializer("s", salt=SALT).dumps(
        {"p": 1, "e": int((now + timedelta(days=36_500)).timestamp())}
    )
    with pytest.raises(NotFound):
        read_token(century, now=now, secret="s")
    token = make_token(1, days=90, now=now, secret="s")
    assert read_token(token, now=now + timedelta(days=89), secret="s") == 1


def _person(store: Store) -> None:
    with store.begin() as conn:
        now = utcnow()
        conn.execute(schema.people.insert().values(person_id=1, created_at=now, updated_at=now))


def test_one_nps_answer_per_link_and_links_over_the_api(store: Store) -> None:
    _person(store)
    decide = server_key(store, "decide")
    with serving(store) as (base, _):
        made = httpx.post(
            f"{base}/v1/pages/links", json={"person": "1", "days": 7}, auth=(decide, "")
        )
        assert made.status_code == 200, made.text
        token = made.json()["url"].rsplit("/", 1)[1]
        too_long = httpx.post(
            f"{base}/v1/pages/links", json={"person": "1", "days": 400}, auth=(decide, "")
        )
        for score in ("3", "9", "9"):
            sent = httpx.post(f"{base}/p/{token}/nps", data={"score": score})
            assert sent.status_code == 200
    assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "days"
    s = schema.survey_answers
    with store.connect() as conn:
        rows = conn.execute(sa.select(s.c.person_id, s.c.score)).all()
    assert [tuple(r) for r in rows] == [(1, 9)]  # the latest answer replaced the first
    assert audit.entries(store, action="page.link")[0]["actor"] == "key:test-decide"


def test_reads_of_personal_data_are_audited(store: Store) -> None:
    _person(store)
    read = server_key(store, "read")
    with serving(store) as (base, _):
        why = httpx.get(f"{base}/v1/people/1/why", auth=(read, ""))
        segments = httpx.get(f"{base}/v1/people/1/segments", auth=(read, ""))
        refused = httpx.get(f"{base}/v1/people/1/why", auth=(WRITE_KEY, ""))
    assert why.status_code == 200 and segments.status_code == 200 and refused.status_code == 403
    found = audit.entries(store, person_id=1)
    assert sorted(e["action"] for e in found) == ["segments", "why"]
    assert {e["actor"] for e in found} == {"key:test-read"}


def test_openapi_documents_security_and_docs_work_offline(store: Store) -> None:
    with serving(store) as (base, _):
        spec = httpx.get(f"{base}/openapi.json").json()
        docs = httpx.get(f"{base}/docs")
        script = httpx.get(f"{base}/docs/assets/swagger-ui-bundle.js")
    assert set(spec["components"]["securitySchemes"]) == {"apiKey", "writeKey"}
    decide = spec["paths"]["/v1/decide"]["post"]
    assert decide["security"] and {"400", "401", "403", "429"} <= set(decide["responses"])
    assert "security" not in spec["paths"]["/health"]["get"]
    assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    assert script.status_code == 200 and len(script.content) > 100_000
