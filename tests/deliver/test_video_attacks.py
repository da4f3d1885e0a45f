"""Attacks on the video pages, each kept as a test: hostile HTTP ranges on a film, a campaign's
buttons carrying markup or a ``javascript:`` address, a person's link used for another
person's events or another kind of page, and the film of a person erased since their link
was sent. (Forged, expired and climbing addresses and event floods are in
tests/deliver/test_video_page_routes.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

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
from surmesure.deliver import documents
from surmesure.errors import InvalidInput
from surmesure.protect.erase import erase_person
from surmesure.store import Store, schema

HOSTILE_LABEL = '<img src=x onerror="alert(1)">"Mes offres'


@pytest.fixture
def world(duckdb_store: Store, tmp_path: Path) -> Iterator[World]:
    ids = add_people(duckdb_store, tmp_path, 2)
    doc = video_campaign("spring", write_template(tmp_path))
    doc["video"]["buttons"] = [{"label": HOSTILE_LABEL, "url": "https://shop.example/?a=1&b=2"}]
    save(duckdb_store, doc, utcnow(), tmp_path)
    films = {i: fake_film(tmp_path / "videos", i) for i in (1, 2)}
    record_films(duckdb_store, "spring", {ids[i]: f for i, f in films.items()}, utcnow())
    overrides = {"video_dir": tmp_path / "videos"}
    settings = settings_for(duckdb_store, **overrides)  # type: ignore[arg-type]
    with serving(duckdb_store, **overrides) as (base, _app):
        yield World(base, settings, ids, films)


def test_hostile_ranges_get_a_bounded_answer_or_an_error(world: World) -> None:
    url = f"{world.base}/v/{world.token(1)}/film.mp4"
    mp4 = world.films[1].mp4.read_bytes()
    size = len(mp4)

    def get(value: str) -> httpx.Response:
        return httpx.get(url, headers={"Range": value}, timeout=30)

    for value, status in (
        ("bytes=5-1", 400),  # backwards
        ("bytes=abc", 400),
        ("items=0-1", 400),
        ("bytes=-0", 416),
        (f"bytes={size}-", 416),  # past the end
        ("bytes=" + "9" * 40 + "-", 416),  # an overflowing start
    ):
        got = get(value)
        assert got.status_code == status, value
        assert b"ftyp" not in got.content
    # an overflowing end is the end of the file
    whole = get("bytes=0-" + "9" * 40)
    assert whole.status_code == 206 and whole.content == mp4
    # overlapping ranges are merged: no answer is longer than the film
    merged = get("bytes=" + ",".join(["0-999"] * 100))
    assert merged.status_code == 206 and merged.content == mp4[:1000]
    # a hundred one-byte ranges: a hundred parts; more than that, the film once
    parts = get("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 200, 2)))
    assert parts.status_code == 206
    assert parts.content.count(b"Content-Range: bytes") == 100
    assert len(parts.content) < 100 * 200
    many = get("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 2000, 2)))
    assert many.status_code == 200 and many.content == mp4
    for answer in (parts, many, whole):
        assert "private" in answer.headers["cache-control"]


def test_button_labels_are_escaped_and_only_web_addresses_lead_anywhere(
    world: World, tmp_path: Path
) -> None:
    html = httpx.get(f"{world.base}/v/{world.token(1)}", timeout=30).text
    assert "<img" not in html and "onerror=" not in html.replace("onerror=&#34;", "")
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&#34;Mes offres" in html
    [href] = re.findall(r'<a class="cta" href="([^"]+)"', html)
    assert href.startswith(world.settings.public_url) and "/t/c/" in href
    assert re.search(r"<script(?![^>]*src=)", html) is None  # no inline script for the CSP
    for url in (
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " https://shop.example",
        "data:text/html,<script>alert(1)</script>",
        'https://shop.example/" onmouseover="alert(1)',
        "https://shop.example/<script>",
        "//evil.example",
    ):
        doc = video_campaign("autumn", write_template(tmp_path))
        doc["video"]["buttons"] = [{"label": "Voir", "url": url}]
        with pytest.raises(InvalidInput) as refused:
            documents.parse(doc)
        assert "buttons" in str(refused.value.field) and "url" in str(refused.value.field), url


def test_a_link_reports_for_its_own_person_alone(world: World, duckdb_store: Store) -> None:
    for i in (1, 2):
        for event in ("play", "complete"):
            sent = httpx.post(f"{world.base}/v/{world.token(i)}/events", json={"event": event})
            assert sent.status_code == 204
    # the body may not name anyone: extra words are not read
    spoof = {"event": "25", "person_id": world.ids[2], "token": world.token(2)}
    assert httpx.post(f"{world.base}/v/{world.token(1)}/events", json=spoof).status_code == 204
    a = schema.channel_activity
    with duckdb_store.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.person_id, a.c.kind).where(a.c.channel == "video", a.c.kind != "opened")
        ).all()
    assert sorted((int(p), k) for p, k in rows) == sorted(
        [(world.ids[1], "played"), (world.ids[1], "completed"), (world.ids[1], "quarter_25"),
         (world.ids[2], "played"), (world.ids[2], "completed")]
    )  # fmt: skip
    # a video link opens no personal page, and the page of a person opens no film
    assert httpx.get(f"{world.base}/p/{world.token(1)}", timeout=30).status_code == 404


def test_an_erased_persons_film_is_gone_with_its_files(world: World, duckdb_store: Store) -> None:
    token = world.token(1)
    assert httpx.get(f"{world.base}/v/{token}/poster.jpg", timeout=30).status_code == 200
    erasure = erase_person(duckdb_store, str(world.ids[1]), confirmed=True)
    for suffix in ("", "/film.mp4", "/poster.jpg", "/subtitles.vtt"):
        gone = httpx.get(f"{world.base}/v/{token}{suffix}", timeout=30)
        assert gone.status_code == 404, suffix
        assert b"ftyp" not in gone.content and b"WEBVTT" not in gone.content
    assert httpx.post(f"{world.base}/v/{token}/events", json={"event": "play"}).status_code == 404
    film = world.films[1]
    assert not film.mp4.exists() and not film.poster.exists() and not film.subtitles.exists()
    assert str(film.mp4) in erasure.files
    # the other person's film stays theirs
    other = httpx.get(f"{world.base}/v/{world.token(2)}/film.mp4", timeout=30)
    assert other.status_code == 200 and other.content == world.films[2].mp4.read_bytes()
