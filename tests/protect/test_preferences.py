"""The preference centre: a signed link opens a person's page in French or English; saving
records one consent record per changed channel, with evidence and no personal value in it;
"unsubscribe from all" refuses every channel, and the next e-mail decision is suppressed; a
tampered link, a personal page link or an expired one opens nothing. Topics, frequency and a
pause saved from the page are preference records with the same evidence, kept as history, read
back by ``person show`` and the consents route, exported and erased with the person; a bad
pause date or a tampered link records nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
import typer
from api_helpers import server_key, serving
from pydantic import ValidationError
from typer.testing import CliRunner

from surmesure.cli import render as render_cli
from surmesure.cli.main import app as cli
from surmesure.config import Settings, get_settings
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.pages import make_token as page_token
from surmesure.decide.service import DecideRequest, decide
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import audit, marketing
from surmesure.protect.erase import erase_person
from surmesure.protect.export import export_person
from surmesure.protect.preferences import make_token, read_token
from surmesure.store import Store, schema
from surmesure.unify.profile import show

SECRET = "a-test-secret-of-some-length"
CHANNELS = ("email", "sms", "phone", "paper", "web")


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


def _checked_channels(html: str) -> int:
    return sum(f'name="{c}" value="on" checked' in html for c in CHANNELS)


def _preferences(store: Store) -> list[tuple[str, str, str, datetime | None, str, str]]:
    p = schema.preferences
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(p.c.kind, p.c.name, p.c.value, p.c.until, p.c.source, p.c.evidence)
            .where(p.c.person_id == 7)
            .order_by(p.c.recorded_at, p.c.kind, p.c.name)
        ).all()
    return [(str(r[0]), str(r[1]), str(r[2]), r[3], str(r[4]), str(r[5])) for r in rows]


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
    assert _checked_channels(french.text) == 5  # nothing refused yet: every channel allowed
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
    assert _checked_channels(page_after.text) == 0
    assert tampered.status_code == other_link.status_code == old.status_code == 404
    assert len(_records(store)) == 2  # the refused links recorded nothing
    views = [e for e in audit.entries(store, person_id=7) if e["action"] == "preferences.view"]
    assert len(views) == 6  # two opened, three saved (each shows the page again), one after
    assert {e["actor"] for e in views} == {"link:preferences"}

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
    assert again.status_code == 200 and _checked_channels(again.text) == 1
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


def test_topics_frequency_and_a_pause_are_recorded_with_their_evidence(store: Store) -> None:
    _people(store)
    now = datetime.now(UTC).replace(tzinfo=None)
    token = make_token(7, days=30, now=now, secret=SECRET)
    back = (now + timedelta(days=20)).date()
    channels = {c: "on" for c in CHANNELS}
    topics = {"topics": "shown", "topic.offers": "on", "topic.events": "on"}
    with serving(store, secret_key=SECRET) as (url, _app):
        first = httpx.get(f"{url}/preferences/{token}")
        french = httpx.post(
            f"{url}/preferences/{token}",
            data={**channels, **topics, "topic.news": "on", "frequency": "weekly",
                  "pause_until": back.isoformat()},
        )  # fmt: skip
        after_french = _preferences(store)
        english = httpx.post(
            f"{url}/preferences/{token}?lang=en",
            data={**channels, **topics, "frequency": "weekly", "pause_until": ""},
        )
        same = httpx.post(
            f"{url}/preferences/{token}?lang=en",
            data={**channels, **topics, "frequency": "weekly", "pause_until": ""},
        )
        key = server_key(store, "read")
        read = httpx.get(f"{url}/v1/people/7/consents", auth=(key, ""))
    assert first.status_code == 200 and "Nouveautés" in first.text
    assert 'name="topic.new_products" value="on" checked' in first.text
    assert 'value="as_it_comes" checked' in first.text
    assert french.status_code == 200 and "Vos préférences sont enregistrées." in french.text
    assert f"Pause en cours jusqu&#39;au {back.isoformat()}" in french.text
    # the French page: left "new products", chose weekly, paused; no channel changed
    assert [r[:4] for r in after_french] == [
        ("frequency", "", "weekly", None),
        ("pause", "", "on", datetime.combine(back, datetime.min.time())),
        ("topic", "new_products", "out", None),
    ]
    assert all(r[4] == "preference_centre" for r in after_french)
    assert all(r[5].startswith("preference centre link ") for r in after_french)
    assert all(r[5].endswith("(fr)") and token not in r[5] for r in after_french)
    assert _records(store) == []  # channels unchanged: no consent record
    # the English page: left "news", ended the pause; the same form again changes nothing
    assert english.status_code == 200 and "Your preferences are saved." in english.text
    assert same.status_code == 200 and "Nothing changed." in same.text
    history = _preferences(store)
    assert [r[:3] for r in history[3:]] == [("pause", "", "off"), ("topic", "news", "out")]
    assert all(r[5].endswith("(en)") for r in history[3:])
    later = datetime.now(UTC).replace(tzinfo=None)  # the server recorded at its own clock
    with store.connect() as conn:
        assert marketing.allowed_frequency(conn, 7, later) == marketing.Frequency(
            "weekly", timedelta(days=7)
        )
        assert marketing.allowed_frequency(conn, 7, now - timedelta(days=1)).value == "as_it_comes"
    assert read.status_code == 200
    body = read.json()["preferences"]
    assert body["in_force"] == {
        "topics": {"offers": True, "news": False, "events": True, "new_products": False},
        "frequency": "weekly",
        "paused_until": None,
    }
    assert len(body["history"]) == 5 and body["history"][0]["evidence"].endswith("(fr)")
    profile = show(store, "7")
    assert profile.preferences["in_force"]["topics"]["news"] is False
    assert [h["kind"] for h in profile.preferences["history"]] == [
        "frequency", "pause", "topic", "pause", "topic"
    ]  # fmt: skip


def test_a_bad_pause_or_a_tampered_link_records_nothing(store: Store) -> None:
    _people(store)
    now = datetime.now(UTC).replace(tzinfo=None)
    token = make_token(7, days=30, now=now, secret=SECRET)
    choice = {"topics": "shown", "frequency": "monthly"}
    with serving(store, secret_key=SECRET) as (url, _app):
        too_far = (now + timedelta(days=400)).date().isoformat()
        far = httpx.post(f"{url}/preferences/{token}", data={**choice, "pause_until": too_far})
        past = httpx.post(f"{url}/preferences/{token}?lang=en", data={"pause_until": "2020-01-01"})
        garbage = httpx.post(f"{url}/preferences/{token}", data={"pause_until": "tomorrow"})
        frequency = httpx.post(f"{url}/preferences/{token}", data={"frequency": "hourly"})
        tampered = httpx.post(
            f"{url}/preferences/{token[:-2]}xx",
            data={**choice, "pause_until": (now + timedelta(days=5)).date().isoformat()},
        )
    assert far.status_code == past.status_code == garbage.status_code == 422
    assert frequency.status_code == 422
    assert "Choisissez une date de fin de pause" in far.text
    assert "Pick an end of the break" in past.text and "Traceback" not in past.text
    assert tampered.status_code == 404
    assert _preferences(store) == [] and _records(store) == []


def test_preferences_are_exported_and_erased_with_the_person(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _people(store)
    now = datetime.now(UTC).replace(tzinfo=None)
    token = make_token(7, days=30, now=now, secret=SECRET)
    with serving(store, secret_key=SECRET) as (url, _app):
        saved = httpx.post(
            f"{url}/preferences/{token}",
            data={"topics": "shown", "frequency": "monthly",
                  "pause_until": (now + timedelta(days=3)).date().isoformat()},
        )  # fmt: skip
    assert saved.status_code == 200
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    get_settings.cache_clear()
    try:
        printed = CliRunner().invoke(cli, ["person", "show", "7"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert printed.exit_code == 0, printed.output
    assert "marketing preferences in force" in printed.stdout
    assert "monthly" in printed.stdout and "preference centre link" in printed.stdout
    export = export_person(store, "7")
    exported = export.tables["preferences"]
    assert sorted((r["kind"], r["name"], r["value"]) for r in exported) == [
        ("frequency", "", "monthly"),
        ("pause", "", "on"),
    ] + [("topic", t, "out") for t in ("events", "new_products", "news", "offers")]
    assert all(r["evidence"].startswith("preference centre link ") for r in exported)
    erase_person(store, "7", confirmed=True)
    with store.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(schema.preferences))
        assert left.scalar_one() == 0


def test_a_topic_needs_a_label_in_french_and_english() -> None:
    with pytest.raises(ValidationError, match=r"preference_topics\['sales'\] has no label in en"):
        Settings(preference_topics={"sales": {"fr": "Soldes"}})
    with pytest.raises(ValidationError, match="lower-case letters"):
        Settings(preference_topics={"Big Sales": {"fr": "Soldes", "en": "Sales"}})
    assert Settings(preference_topics={"sales": {"fr": "Soldes", "en": "Sales"}})


def test_the_longest_pause_is_one_rule_every_recorder_shares() -> None:
    at = datetime(2026, 3, 1, 12, 0)
    row = marketing.preference_row(
        1, "pause", "on", until=at + timedelta(days=10), source="shop", evidence=None,
        recorded_at=at, pause_max_days=10,
    )  # fmt: skip
    assert row["until"] == at + timedelta(days=10)
    for until in (at, at + timedelta(days=10, seconds=1)):
        with pytest.raises(InvalidInput) as caught:
            marketing.preference_row(
                1, "pause", "on", until=until, source="shop", evidence=None, recorded_at=at,
                pause_max_days=10,
            )  # fmt: skip
        assert caught.value.field == "until" and "10 days" in str(caught.value)
