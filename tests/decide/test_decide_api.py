"""The decision API, /why, personal pages and their NPS form, and the commands, on both stores."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import api_helpers
import httpx
import orjson
import pytest
import sqlalchemy as sa
import typer
from api_helpers import WRITE_KEY, server_key
from decide_world import DAY, FakeRecommender, add_person, add_stores, set_consent
from fastapi import FastAPI
from itsdangerous import URLSafeTimedSerializer
from typer.testing import CliRunner

from surmesure.cli import render as render_cli
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.pages import SALT, make_token, read_token
from surmesure.errors import NotFound
from surmesure.protect import audit
from surmesure.store import Store, schema

SECRET = "test-secret"
runner = CliRunner()


@contextmanager
def serving(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    monkeypatch.setenv("SURMESURE_SECRET_KEY", SECRET)

    def prepare(app: FastAPI) -> None:
        app.state.templates = Library(EXAMPLES)
        app.state.recommender = FakeRecommender()

    with api_helpers.serving(store, prepare) as running:
        yield running


def world(store: Store) -> None:
    fresh = utcnow() - DAY
    add_stores(store, [("LYO", "Lyon", "69001", 45.7640, 4.8357)])
    add_person(
        store,
        1,
        {"first_name": ("Marie", "crm", 0.9, fresh), "city": ("Lyon", "crm", 0.9, fresh)},
        identifiers={"customer_id": "C1", "anonymous_id": "anon-1"},
        segments=["loyal_customers"],
    )
    add_person(store, 2, {"first_name": ("Paul", "crm", 0.9, fresh)}, segments=["loyal_customers"])
    set_consent(store, 2, False, utcnow() - timedelta(hours=1))
    add_person(store, 3, {"first_name": ("Zoé", "partner", 0.3, fresh)})


def post(base: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    kw.setdefault("auth", (DECIDE_KEY[0], ""))
    return httpx.post(f"{base}/v1/decide", json=body, timeout=30, **kw)


DECIDE_KEY: list[str] = [""]  # the decide key of the running test's store


def count(store: Store, table: sa.Table, **where: Any) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with store.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_decide_personal_neutral_and_opted_out(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    world(store)
    DECIDE_KEY[0] = server_key(store, "decide")
    read = server_key(store, "read")
    with serving(store, monkeypatch) as (base, app):
        marie = post(base, {"customer_id": "C1", "placement": "email_weekly"})
        assert marie.status_code == 200, marie.text
        body = marie.json()
        assert body["person_id"] == 1 and body["content"]["variant"] == "loyal"
        assert body["content"]["body"].startswith("Bonjour Marie,")
        assert body["products"][0]["product_code"] == "P-1"
        assert body["context"]["nearest_store"]["store_id"] == "LYO"
        assert body["explanation"]["products"]["personalized"] is True
        fields = {f["field"]: f for f in body["explanation"]["content"]["fields"]}
        assert fields["first_name"]["used"] and fields["first_name"]["source"] == "crm"

        paul = post(
            base,
            {"person_id": 2, "placement": "email_weekly"},
            auth=None,
            headers={"Authorization": f"Bearer {DECIDE_KEY[0]}"},
        ).json()
        assert paul["content"]["variant"] == "default"  # in loyal_customers, but opted out
        assert "Paul" not in paul["content"]["body"] + paul["content"]["subject"]
        assert paul["products"][0]["product_code"] == "P-POP"
        assert paul["context"]["nearest_store"] is None
        assert {f["reason"] for f in paul["explanation"]["content"]["fields"]} == {"opted_out"}

        zoe = post(base, {"person_id": 3, "placement": "email_weekly"}).json()
        assert zoe["content"]["body"].startswith("Bonjour,")
        assert zoe["explanation"]["content"]["fields"][0]["reason"] == "unreliable"

        nobody = post(base, {"anonymousId": "never-seen", "placement": "home_banner"})
        assert nobody.status_code == 200
        assert nobody.json()["known"] is False and nobody.json()["content"]["variant"] == "default"

        banner = post(base, {"anonymousId": "anon-1", "placement": "home_banner"}).json()
        assert banner["person_id"] == 1
        assert [o["content_id"] for o in banner["offers"]] == ["spring_sale", "loyalty_points"]

        calls = app.state.recommender.calls
        assert [c[0] for c in calls] == [1, None, 3, None, 1]

        assert post(base, {"person_id": 1, "placement": "nowhere"}).status_code == 404
        assert (
            post(base, {"person_id": 1, "placement": "home_banner"}, auth=("bad", "")).status_code
            == 401
        )
        public = post(base, {"person_id": 1, "placement": "home_banner"}, auth=(WRITE_KEY, ""))
        assert public.status_code == 403 and "Marie" not in public.text
        bad = post(base, {"person_id": "x", "placement": "home_banner"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "person_id"

        # decisions are written behind, within the flush interval
        deadline = time.monotonic() + 5
        while count(store, schema.decisions) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        # exposures: content + offers for known people; none for nobody
        assert count(store, schema.exposures, person_id=1) == 1 + 1 + 2
        assert count(store, schema.exposures, person_id=2) == 1
        assert count(store, schema.exposures) == 4 + 1 + 1  # Marie, Paul, Zoé
        assert count(store, schema.decisions) == 5

        why = httpx.get(f"{base}/v1/people/1/why", auth=(read, ""), timeout=30)
        assert why.status_code == 200
        decisions = why.json()["decisions"]
        assert [d["placement"] for d in decisions] == ["home_banner", "email_weekly"]
        assert decisions[1]["explanation"]["content"]["variant"]["name"] == "loyal"
        assert decisions[0]["result"]["offers"][0]["content_id"] == "spring_sale"
        assert httpx.get(f"{base}/v1/people/1/why", timeout=30).status_code == 401

        # a second banner: spring_sale (not again within 7 days) is not offered again
        again = post(base, {"person_id": 1, "placement": "home_banner"}).json()
        assert [o["content_id"] for o in again["offers"]] == ["newsletter_signup", "loyalty_points"]
        notes = {n["content_id"]: n["reason"] for n in again["explanation"]["offers"]}
        assert notes == {"newsletter_signup": "new", "loyalty_points": "repeat"}


def test_personal_page_tokens_and_nps(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    world(store)
    now = utcnow()
    with serving(store, monkeypatch) as (base, _):
        token = make_token(1, days=30, now=now, secret=SECRET)
        page = httpx.get(f"{base}/p/{token}", timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "Bonjour Marie" in page.text and "Linen shirt" in page.text
        assert f'action="/p/{token}/nps"' in page.text and 'name="viewport"' in page.text
        # the token carries the person's id and its expiry, nothing of what they are
        body = token.split(".")[0]
        carried = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        assert set(carried) == {"p", "e"} and carried["p"] == 1
        assert 'id="summary"' in page.text and "49,90\xa0€" in page.text
        paul = httpx.get(f"{base}/p/{make_token(2, days=30, now=now, secret=SECRET)}", timeout=30)
        assert paul.status_code == 200 and "Paul" not in paul.text  # opted out: neutral page
        assert 'id="summary"' not in paul.text and "Popular mug" in paul.text

        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        forged = URLSafeTimedSerializer("another-secret", salt=SALT).dumps({"p": 1, "e": 2**40})
        expired = make_token(1, days=1, now=now - timedelta(days=2), secret=SECRET)
        for bad in (tampered, forged, expired, "not-a-token"):
            gone = httpx.get(f"{base}/p/{bad}", timeout=30)
            assert gone.status_code == 404 and "expiré" in gone.text
            assert "Traceback" not in gone.text

        sent = httpx.post(
            f"{base}/p/{token}/nps", data={"score": "9", "comment": "Très bien"}, timeout=30
        )
        assert sent.status_code == 200 and "Merci" in sent.text
        refused = httpx.post(f"{base}/p/{token}/nps", data={"score": "11"}, timeout=30)
        assert refused.status_code == 400
        assert (
            httpx.post(f"{base}/p/{expired}/nps", data={"score": "5"}, timeout=30).status_code
            == 404
        )
    s = schema.survey_answers
    with store.connect() as conn:
        rows = conn.execute(sa.select(s.c.person_id, s.c.metric, s.c.score, s.c.comment)).all()
    assert [tuple(r) for r in rows] == [(1, "nps", 9, "Très bien")]


def test_tokens_carry_only_an_opaque_id_and_expire() -> None:
    now = utcnow()
    token = make_token(42, days=3, now=now, secret=SECRET)
    assert read_token(token, now=now + timedelta(days=2), secret=SECRET) == 42
    with pytest.raises(NotFound):
        read_token(token, now=now + timedelta(days=3, seconds=1), secret=SECRET)
    with pytest.raises(NotFound):
        read_token(token, now=now, secret="other")
    payload = URLSafeTimedSerializer(SECRET, salt=SALT).loads(token)
    assert set(payload) == {"p", "e"}


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> Any:
    monkeypatch.setenv("SURMESURE_DATABASE_URL", url)
    monkeypatch.setenv("SURMESURE_SECRET_KEY", SECRET)
    monkeypatch.setenv("SURMESURE_TEMPLATES_DIR", str(EXAMPLES))
    monkeypatch.setenv("SURMESURE_PUBLIC_URL", "https://shop.example")
    app = typer.Typer()
    render_cli.register(app)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, list(args))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result


def test_render_and_page_link_commands(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    world(store)
    out = _cli(monkeypatch, store.url, "render", "welcome_email", "--person", "3", "--json")
    shown = orjson.loads(out.stdout)
    assert shown["variant"] == "default" and shown["body"].startswith("Bonjour,")
    assert shown["explanation"]["fields"][0]["reason"] == "unreliable"
    table = _cli(monkeypatch, store.url, "render", "welcome_email", "--person", "customer_id:C1")
    assert "loyal" in table.stdout and "crm" in table.stdout
    url = _cli(
        monkeypatch, store.url, "page", "link", "--person", "1", "--days", "5"
    ).stdout.strip()
    assert url.startswith("https://shop.example/p/")
    assert read_token(url.rsplit("/", 1)[1], now=utcnow(), secret=SECRET) == 1
    assert count(store, schema.decisions) == 0  # render shows, it does not record
    reads = [(e["action"], e["person_id"]) for e in audit.entries(store)]
    assert sorted(reads) == [("page.link", 1), ("render", 1), ("render", 3)]
