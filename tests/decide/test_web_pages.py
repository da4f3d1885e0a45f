"""Personal pages as the web channel: a reloaded page keeps its offer, the page's language in
its error pages, one NPS answer per link, tracked links to the shop, views as opens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import api_helpers
import httpx
import pytest
import sqlalchemy as sa
import yaml
from decide_world import DAY, FakeRecommender, add_person
from fastapi import FastAPI

from surmesure.clock import utcnow
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.pages import make_token
from surmesure.store import Store, schema

SECRET = "test-secret"
SHOP = "https://shop.example/"


@contextmanager
def serving(
    store: Store, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> Iterator[tuple[str, Any]]:
    monkeypatch.setenv("SURMESURE_SECRET_KEY", SECRET)

    def prepare(app: FastAPI) -> None:
        app.state.templates = Library(EXAMPLES)
        app.state.recommender = FakeRecommender()

    with api_helpers.serving(store, prepare, **overrides) as running:
        yield running


def rows(store: Store, table: sa.Table, *columns: str) -> list[tuple[Any, ...]]:
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*(table.c[c] for c in columns)))]


def test_a_reloaded_page_keeps_its_offer(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    add_person(store, 1, {"first_name": ("Marie", "crm", 0.9, utcnow() - DAY)})
    now = utcnow()
    with serving(store, monkeypatch) as (base, _):
        token = make_token(1, days=30, now=now, secret=SECRET)
        first = httpx.get(f"{base}/p/{token}", timeout=30)
        again = httpx.get(f"{base}/p/{token}", timeout=30)
        # a new link is a new page: the offer (not again within 30 days) is not on it
        other = httpx.get(f"{base}/p/{make_token(1, days=29, now=now, secret=SECRET)}", timeout=30)
    assert first.status_code == again.status_code == other.status_code == 200
    assert 'id="offers"' in first.text and "Votre offre" in first.text
    assert 'id="offers"' in again.text and "Votre offre" in again.text
    assert 'id="offers"' not in other.text
    assert "Bonjour Marie" in again.text
    views = rows(store, schema.page_views, "person_id", "views", "campaign")
    assert sorted(views) == [(1, 1, None), (1, 2, None)]
    # the reload made no new decision and showed the offer no second time
    assert len(rows(store, schema.decisions, "decision_id")) == 2
    shown = rows(store, schema.exposures, "content_id")
    assert shown.count(("page_welcome_offer",)) == 1


def english_templates(folder: Path) -> Path:
    page = yaml.safe_load((Path(EXAMPLES) / "personal_page.yaml").read_text(encoding="utf-8"))
    page["locale"] = "en"
    page["variants"][0]["body"] = "Hello {{ person.first_name }}"
    folder.mkdir()
    (folder / "personal_page.yaml").write_text(yaml.safe_dump(page), encoding="utf-8")
    return folder


def test_the_pages_language_is_used_in_its_errors(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add_person(store, 1, {"first_name": ("Mary", "crm", 0.9, utcnow() - DAY)})
    templates = english_templates(tmp_path / "templates")
    now = utcnow()
    with serving(store, monkeypatch, templates_dir=templates) as (base, _):
        token = make_token(1, days=30, now=now, secret=SECRET)
        page = httpx.get(f"{base}/p/{token}", timeout=30)
        gone = httpx.get(f"{base}/p/not-a-token", timeout=30)
        bad = httpx.post(f"{base}/p/{token}/nps", data={"score": "eleven"}, timeout=30)
        thanks = httpx.post(f"{base}/p/{token}/nps", data={"score": "8"}, timeout=30)
        long = httpx.post(f"{base}/p/{token}/nps", data={"comment": "x" * 20_000}, timeout=30)
    assert page.status_code == 200 and "Hello Mary" in page.text
    assert '<html lang="en">' in page.text and "Would you recommend us" in page.text
    assert "Recommanderiez" not in page.text and "Your offers" in page.text
    assert gone.status_code == 404 and "This link does not exist or has expired." in gone.text
    assert '<html lang="en">' in gone.text and "expiré" not in gone.text
    assert bad.status_code == 400 and "Choose a score from 0 to 10." in bad.text
    assert thanks.status_code == 200 and "Thank you!" in thanks.text
    assert long.status_code == 413 and "Shorten the comment." in long.text


def test_french_pages_keep_french_errors(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(store, monkeypatch) as (base, _):
        gone = httpx.get(f"{base}/p/not-a-token", timeout=30)
    assert gone.status_code == 404 and "Ce lien n&#39;existe pas ou a expiré." in gone.text
    assert '<html lang="fr">' in gone.text


def test_a_second_nps_answer_replaces_the_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_person(store, 1, {"first_name": ("Marie", "crm", 0.9, utcnow() - DAY)})
    now = utcnow()
    with serving(store, monkeypatch) as (base, _):
        token = make_token(1, days=30, now=now, secret=SECRET)
        other = make_token(1, days=20, now=now, secret=SECRET)
        for score, comment in (("3", "Bof"), ("9", "Finalement très bien")):
            sent = httpx.post(
                f"{base}/p/{token}/nps", data={"score": score, "comment": comment}, timeout=30
            )
            assert sent.status_code == 200
        assert httpx.post(f"{base}/p/{other}/nps", data={"score": "7"}, timeout=30).is_success
    answers = sorted(rows(store, schema.survey_answers, "person_id", "score", "comment"))
    # one answer per link: the second through the first link replaced its first
    assert answers == [(1, 7, None), (1, 9, "Finalement très bien")]


def test_page_links_go_to_the_shop_through_tracked_redirects(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_person(store, 1, {"first_name": ("Marie", "crm", 0.9, utcnow() - DAY)})
    now = utcnow()
    settings = {
        "shop_url": SHOP,
        "product_url": "https://shop.example/p/{product_code}",
        "public_url": "https://pages.example",
    }
    with serving(store, monkeypatch, **settings) as (base, _):
        token = make_token(1, days=30, now=now, secret=SECRET, campaign="spring")
        page = httpx.get(f"{base}/p/{token}", timeout=30)
        assert page.status_code == 200
        links = [part.split('"', 1)[0] for part in page.text.split('href="')[1:]]
        assert links and all(link.startswith("https://pages.example/t/c/") for link in links)
        # the links' host is this server
        targets = [httpx.get(base + link[len("https://pages.example") :]) for link in links]
    assert all(t.status_code == 302 for t in targets)
    places = {t.headers["location"] for t in targets}
    assert SHOP in places
    assert any(p.startswith("https://shop.example/p/") for p in places - {SHOP})
    activity = rows(store, schema.channel_activity, "person_id", "channel", "kind", "campaign")
    assert activity.count((1, "web", "opened", "spring")) == 1
    assert activity.count((1, "web", "clicked", "spring")) == len(links)


def test_without_a_shop_the_page_has_no_dead_link(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_person(store, 1, {"first_name": ("Marie", "crm", 0.9, utcnow() - DAY)})
    with serving(store, monkeypatch) as (base, _):
        page = httpx.get(f"{base}/p/{make_token(1, days=3, now=utcnow(), secret=SECRET)}")
    assert page.status_code == 200 and 'href="/"' not in page.text and 'id="cta"' not in page.text
