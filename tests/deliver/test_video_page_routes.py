"""The video page and its files: a token opens its own film only, the film answers ranges,
events are kept once per link and bounded, and whatever is forged, expired, another
campaign's or walks up the folder answers 404 with nothing leaked. The films here are made
with ffmpeg (the renderer has its own tests; tests/deliver/test_video_channel.py runs both)."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import serving, settings_for
from campaign_world import add_people
from video_campaign_world import (
    World,
    fake_film,
    record_films,
    save,
    video_campaign,
    write_template,
)

from surmesure.clock import utcnow
from surmesure.decide import pages
from surmesure.deliver import results, video
from surmesure.protect import links
from surmesure.store import Store, schema


@pytest.fixture
def world(duckdb_store: Store, tmp_path: Path) -> Iterator[World]:
    store = duckdb_store
    ids = add_people(store, tmp_path, 3)
    template = write_template(tmp_path)
    now = utcnow()
    save(store, video_campaign("spring", template), now, tmp_path)
    save(store, video_campaign("autumn", template), now, tmp_path)
    films = {i: fake_film(tmp_path / "videos", i) for i in (1, 2)}
    record_films(store, "spring", {ids[i]: f for i, f in films.items()}, now)
    limits = {"links": "60/minute", "pages": "30/minute"}
    overrides = {"video_dir": tmp_path / "videos", "client_rate_limits": limits}
    settings = settings_for(store, **overrides)  # type: ignore[arg-type]
    with serving(store, **overrides) as (base, _app):
        yield World(base, settings, ids, films)


def test_the_page_plays_its_own_film_privately(world: World, duckdb_store: Store) -> None:
    token = world.token(1)
    page = httpx.get(f"{world.base}/v/{token}")
    assert page.status_code == 200
    html = page.text
    assert f'poster="{token}/poster.jpg"' in html and f'src="{token}/film.mp4"' in html
    assert re.search(r'<track kind="subtitles" src="[^"]+/subtitles.vtt" srclang="fr"', html)
    assert 'label="Français" default' in html
    # the button leads to the shop through a tracked link of channel video
    button = re.search(r'<a class="cta" href="([^"]+)"', html)
    assert button is not None and "/t/c/" in button.group(1)
    # nothing from another site: the page's one script is this server's
    assert re.findall(r"<script[^>]*src=\"([^\"]+)\"", html) == ["player.js"]
    assert "https://" not in html.replace(world.settings.public_url, "")
    headers = page.headers
    assert headers["cache-control"].startswith("no-store")
    assert headers["referrer-policy"] == "no-referrer"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    script = httpx.get(f"{world.base}/v/player.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]

    mp4 = world.films[1].mp4.read_bytes()
    whole = httpx.get(f"{world.base}/v/{token}/film.mp4")
    assert whole.status_code == 200 and whole.content == mp4
    assert whole.headers["content-type"] == "video/mp4"
    part = httpx.get(f"{world.base}/v/{token}/film.mp4", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == mp4[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(mp4)}"
    poster = httpx.get(f"{world.base}/v/{token}/poster.jpg")
    assert poster.content == world.films[1].poster.read_bytes()
    vtt = httpx.get(f"{world.base}/v/{token}/subtitles.vtt")
    assert vtt.text.startswith("WEBVTT") and "Film 1" in vtt.text
    # another person's link opens their film, never this one
    other = httpx.get(f"{world.base}/v/{world.token(2)}/film.mp4").content
    assert other == world.films[2].mp4.read_bytes() != mp4

    a = schema.channel_activity
    with duckdb_store.connect() as conn:
        rows = conn.execute(sa.select(a.c.person_id, a.c.channel, a.c.kind, a.c.campaign)).all()
    assert [tuple(r) for r in rows] == [(world.ids[1], "video", "opened", "spring")]


def _raw(base: str, path: str) -> tuple[int, bytes]:
    """``path`` sent as it is written (no client tidies its dot segments)."""
    where = urlsplit(base)
    conn = http.client.HTTPConnection(where.hostname or "", where.port)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_forged_expired_foreign_and_climbing_addresses_answer_404(world: World) -> None:
    good = world.token(1)
    s = world.settings
    now = utcnow()

    def signed(
        secret: str = s.secret_key, at: datetime = now, campaign: str | None = "spring"
    ) -> str:
        person = world.ids[1]
        return links.make_token(
            person, salt=video.SALT, days=1, now=at, secret=secret, max_days=90, campaign=campaign
        )

    forged = [
        "nothing",
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # tampered signature
        signed(secret="x" * 40),  # another secret
        # a valid link of another kind: the person's page
        pages.make_token(world.ids[1], now=now, secret=s.secret_key, campaign="spring"),
        signed(at=now - timedelta(days=2)),  # expired yesterday
        signed(campaign=None),  # a link of no campaign
        world.token(1, "autumn"),  # a campaign the person has no film in
        world.token(3),  # a person of the campaign without a film
    ]
    for token in forged:
        for suffix in ("", "/film.mp4", "/poster.jpg", "/subtitles.vtt"):
            answer = httpx.get(f"{world.base}/v/{token}{suffix}")
            assert answer.status_code == 404, (token, suffix)
            assert b"ftyp" not in answer.content and b"WEBVTT" not in answer.content
            if not suffix:  # the pages' plain 404, naming no reason
                assert "Page introuvable" in answer.text and "expir" in answer.text
        sent = httpx.post(f"{world.base}/v/{token}/events", json={"event": "play"})
        assert sent.status_code == 404
    for path in (
        f"/v/{good}/../../../../etc/passwd",
        f"/v/{good}/..%2F..%2F..%2Fetc%2Fpasswd",
        "/v/..%2F..%2Fetc%2Fpasswd/film.mp4",
        f"/v/{good}/%2e%2e/film.mp4",
        f"/v/{good}/film.mp4%00.jpg",
        f"/v/{good}/{world.films[2].content_hash}.mp4",
    ):
        status, body = _raw(world.base, path)
        assert status == (400 if "%00" in path else 404), path
        assert b"root:" not in body and b"ftyp" not in body


def _events(store: Store) -> list[tuple[int, str]]:
    a = schema.channel_activity
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.person_id, a.c.kind)
            .where(a.c.channel == "video", a.c.kind != "opened")
            .order_by(a.c.person_id, a.c.kind)
        )
        return [(int(r[0]), str(r[1])) for r in rows]


def test_events_are_kept_once_per_link_and_hostile_bodies_refused(
    world: World, duckdb_store: Store
) -> None:
    token = world.token(1)
    url = f"{world.base}/v/{token}/events"
    for _ in range(3):  # the script's retries, or a replay: one row
        assert httpx.post(url, json={"event": "play"}).status_code == 204
    assert _events(duckdb_store) == [(world.ids[1], "played")]
    hostile: list[tuple[bytes, int]] = [
        (b"not json", 400),
        (b"[1, 2, 3]", 400),
        (b'{"event": "<script>alert(1)</script>"}', 400),
        (b'{"event": ["play"]}', 400),
        (b'{"event": "played"}', 400),
        (b'{"event": "' + b"9" * 5000 + b'"}', 413),
        (b"{" * 200, 400),
    ]
    for body, status in hostile:
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == status, body[:40]
        if status == 400:
            assert answer.json()["error"]["field"] == "event"
    assert _events(duckdb_store) == [(world.ids[1], "played")]


def test_an_event_flood_records_nothing_past_the_clients_limit(
    world: World, duckdb_store: Store
) -> None:
    url = f"{world.base}/v/{world.token(2)}/events"
    with httpx.Client() as client:
        answers = [client.post(url, json={"event": "play"}).status_code for _ in range(70)]
        assert set(answers) == {204}  # the page's script never sees an error
        # past the limit (60 a minute), a new event is not written
        assert client.post(url, json={"event": "complete"}).status_code == 204
    assert _events(duckdb_store) == [(world.ids[2], "played")]


def test_results_count_views_quarters_completion_and_clicks(
    world: World, duckdb_store: Store
) -> None:
    reported = {1: ["play", "25", "50", "75", "complete"], 2: ["play", "25"]}
    for i, names in reported.items():
        for name in names:
            url = f"{world.base}/v/{world.token(i)}/events"
            assert httpx.post(url, json={"event": name}).status_code == 204
    page = httpx.get(f"{world.base}/v/{world.token(2)}").text
    button = re.search(r'<a class="cta" href="([^"]+)"', page)
    assert button is not None
    click = httpx.get(world.base + urlsplit(button.group(1)).path)  # the public URL is ours
    assert (
        click.status_code == 302 and click.headers["location"] == "https://shop.example.com/offres"
    )

    out = results.measure(duckdb_store, "spring")["video"]
    # counted here from what was sent: who played, reached each quarter, finished
    views = [i for i, names in reported.items() if "play" in names]
    done = [i for i in views if "complete" in reported[i]]
    assert out["views"] == len(views) == 2
    assert out["quarters"] == {q: sum(q in reported[i] for i in views) for q in ("25", "50", "75")}
    assert out["completed"] == len(done) == 1
    assert out["completion_rate"] == pytest.approx(len(done) / len(views))
    assert out["pages_opened"] == 1 and out["clicked"] == 1 and out["clicks"] == 1
