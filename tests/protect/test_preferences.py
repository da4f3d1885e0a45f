"""The preference centre: a signed link opens a person's page in French or English; saving
records one consent record per changed channel, with evidence and no personal value in it;
"unsubscribe from all" refuses every channel, and the next e-mail decision is suppressed; a
tampered link, a personal page link or an expired one opens nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
import typer
from api_helpers import serving
from typer.testing import CliRunner

from surmesure.cli import render as render_cli
from surmesure.config import get_settings
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.pages import make_token as page_token
from surmesure.decide.service import DecideRequest, decide
from surmesure.errors import NotFound
from surmesure.protect.preferences import make_token, read_token
from surmesure.store import Store, schema

SECRET = "a-test-secret-of-some-length"


def _people(store: Store) -> None:
    at = datetime(2026, 1, 1)
    with store.begin() as conn:
        conn.execute(
            schema.people.insert(),
            [{"person_id": 7, "merged_into": None, "created_at": at, "updated_at": at}],
        )


def _records(store: Store) -> list[tuple[str, str, bool, str, str]]:
    k = schema.consents
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(k.c.purpose, k.c.channel, k.c.granted, k.c.source, k.c.evidence)
            .where(k.c.person_id == 7)
            .order_by(k.c.recorded_at, k.c.channel)
        ).all()
    return [(str(r[0]), str(r[1]), bool(r[2]), str(r[3]), str(r[4])) for r in rows]


def test_the_preference_centre_records_each_change(store: Store) -> None:
    _people(store)
    now = datetime.now(UTC).replace(tzinfo=None)
    token = make_token(7, days=30, now=now, secret=SECRET)
    every = {"email": "on", "sms": "on", "phone": "on", "paper": "on", "web": "on"}
    with serving(store, secret_key=SECRET) as (url, _app):
        french = httpx.get(f"{url}/preferences/{token}")
        english = httpx.get(f"{url}/preferences/{token}", headers={"accept-language": "en-GB"})
        unchanged = httpx.post(f"{url}/preferences/{token}", data=every)
        without_sms = {k: v for k, v in every.items() if k != "sms"}
        no_sms = httpx.post(f"{url}/preferences/{token}?lang=en", data=without_sms)
        after_sms = _records(store)
        everything = httpx.post(f"{url}/preferences/{token}", data={"all": "unsubscribe"})
        page_after = httpx.get(f"{url}/preferences/{token}")
        tampered = httpx.get(f"{url}/preferences/{token[:-2]}xx")
        other_link = httpx.get(f"{url}/preferences/{page_token(7, now=now, secret=SECRET)}")
        expired = make_token(7, days=1, now=now - timedelta(days=2), secret=SECRET)
        old = httpx.post(f"{url}/preferences/{expired}", data={"all": "unsubscribe"})
    assert french.status_code == 200 and "Vos préférences de contact" in french.text
    assert french.text.count("checked") == 5  # nothing refused yet: every channel allowed
    assert english.status_code == 200 and "Your contact preferences" in english.text
    assert unchanged.status_code == 200 and "Rien n&#39;a changé." in unchanged.text
    assert no_sms.status_code == 200 and "Your preferences are saved." in no_sms.text
    assert [r[:4] for r in after_sms] == [("marketing", "sms", False, "preference_centre")]
    assert after_sms[0][4].startswith("preference centre link ") and after_sms[0][4].endswith(
        "(en)"
    )
    assert token not in after_sms[0][4]  # the link itself is never stored
    assert everything.status_code == 200
    assert [r[:3] for r in _records(store)][-1] == ("marketing", "any", False)
    assert page_after.text.count("checked") == 0
    assert tampered.status_code == other_link.status_code == old.status_code == 404
    assert len(_records(store)) == 2  # the refused links recorded nothing

    email = Library(EXAMPLES).for_placement("email_weekly")
    later = datetime.now(UTC).replace(tzinfo=None)
    result = decide(store, DecideRequest("email_weekly", person_id=7), email, now=later,
                    use_default_recommender=False)  # fmt: skip
    assert result["suppressed"]["reason"] == "opted_out_marketing"


def test_choosing_a_channel_again_after_unsubscribing_from_all(store: Store) -> None:
    _people(store)
    now = datetime.now(UTC).replace(tzinfo=None)
    token = make_token(7, days=30, now=now, secret=SECRET)
    with serving(store, secret_key=SECRET) as (url, _app):
        httpx.post(f"{url}/preferences/{token}", data={"all": "unsubscribe"})
        again = httpx.post(f"{url}/preferences/{token}", data={"email": "on"})
    assert again.status_code == 200 and again.text.count("checked") == 1
    assert [r[:3] for r in _records(store)] == [
        ("marketing", "any", False),
        ("marketing", "email", True),
    ]


def test_the_cli_prints_a_preference_link(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _people(store)
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    monkeypatch.setenv("SURMESURE_SECRET_KEY", SECRET)
    monkeypatch.setenv("SURMESURE_PUBLIC_URL", "https://shop.example")
    app = typer.Typer()
    render_cli.register(app)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["page", "preferences", "--person", "7"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith("https://shop.example/preferences/")
    now = datetime.now(UTC).replace(tzinfo=None)
    assert read_token(url.rsplit("/", 1)[1], now=now, secret=SECRET) == 7
    with pytest.raises(NotFound):  # ninety days by default
        read_token(url.rsplit("/", 1)[1], now=now + timedelta(days=91), secret=SECRET)
