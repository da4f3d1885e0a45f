"""Personalized films on a small shop: the real files (ffprobe), their subtitles, their
pixels, the neutral film made once, hostile names drawn and said as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from video_world import (
    NOW,
    add_person,
    frame,
    monthly_spend,
    next_person_id,
    person_id,
    refuse_personalization,
    shop_fixture,  # noqa: F401 - the fixture shop
)

from surmesure.config import Settings, get_settings
from surmesure.decide.recommend.service import recommend
from surmesure.store import Store
from surmesure.video import load_template, parse_template, render_many, render_person
from surmesure.video.encode import probe
from surmesure.video.people import month_starts, read_viewers
from surmesure.video.plan import MAX_SAID

HELLO = "Bonjour{% if person.first_name %} {{ person.first_name }}{% endif %} !"
TEMPLATE: dict[str, Any] = {
    "name": "short_year",
    "locale": "fr",
    "fields": {"first_name": {"trait": "first_name", "fallback": ""}},
    "scenes": [
        {
            "kind": "title",
            "duration": 1.2,
            "transition": {"fade_in": 0.2, "fade_out": 0.2},
            "texts": [{"text": HELLO, "y": 0.45, "size": 80}],
            "say": HELLO + " Voici votre année.",
        },
        {
            "kind": "chart",
            "duration": 1.0,
            "title": "Vos achats",
            "neutral_text": "Une belle année",
            "say": "{% if personal %}{{ total | money(currency) }} cette année.{% else %}"
            "Merci à tous.{% endif %}",
        },
        {"kind": "products", "duration": 1.0, "count": 3, "title": "Pour vous"},
        {
            "kind": "store",
            "duration": 1.04,
            "title": "Votre magasin",
            "text": "{{ store.name }}",
            "neutral_text": "Nos magasins",
            "say": "{% if personal %}À bientôt à {{ store.city }}.{% else %}À bientôt.{% endif %}",
        },
    ],
}
DURATION = 1.2 + 1.0 + 1.0 + 1.04
NAME_BOX = (slice(250, 400), slice(300, 980))  # rows, columns around the greeting
CORNER = (slice(0, 60), slice(0, 60))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings().model_copy(update={"video_dir": tmp_path / "videos"})


def test_personal_film_is_a_720p_h264_aac_mp4_with_the_name(
    shop: tuple[Store, str], settings: Settings
) -> None:
    store, _ = shop
    template = parse_template(TEMPLATE)
    film = render_person(store, template, person_id(store, "C1"), settings=settings, now=NOW)
    found = probe(film.mp4)
    streams = {s["codec_type"]: s for s in found["streams"]}
    assert sorted(s["codec_name"] for s in found["streams"]) == ["aac", "h264"]
    assert (streams["video"]["width"], streams["video"]["height"]) == (1280, 720)
    assert streams["video"]["pix_fmt"] == "yuv420p"
    assert streams["video"]["r_frame_rate"] == "25/1"
    assert float(found["format"]["duration"]) == pytest.approx(DURATION, abs=0.1)
    assert float(streams["video"]["duration"]) == pytest.approx(DURATION, abs=0.1)
    assert film.duration_s == pytest.approx(DURATION, abs=1e-6)
    # the index is at the front (+faststart): "moov" comes before "mdat"
    head = film.mp4.read_bytes()[:4096]
    assert 0 <= head.find(b"moov") < 200
    assert not film.neutral and film.scenes == 4 and film.reused_scenes == 0
    vtt = film.subtitles.read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "Bonjour Marie ! Voici votre année." in vtt
    assert "00:00:00.000 --> 00:00:01.200" in vtt and "00:00:03.200 --> 00:00:04.240" in vtt
    assert "À bientôt à Nantes." in vtt  # her home store (a reliable trait)
    with_poster = film.poster.read_bytes()
    assert with_poster[:2] == b"\xff\xd8"  # a JPEG


def test_neutral_film_has_the_fallbacks_and_other_pixels_where_the_name_is(
    shop: tuple[Store, str], settings: Settings
) -> None:
    store, _ = shop
    template = parse_template(TEMPLATE)
    mine, nobody = render_many(
        store, template, [person_id(store, "C1"), 10**9], settings=settings, now=NOW
    )
    assert nobody.neutral and not mine.neutral
    vtt = nobody.subtitles.read_text(encoding="utf-8")
    assert "Bonjour ! Voici votre année." in vtt and "Merci à tous." in vtt
    assert "Marie" not in vtt and "À bientôt." in vtt
    personal, neutral = frame(mine.mp4, 0.6), frame(nobody.mp4, 0.6)
    box = np.abs(personal[NAME_BOX] - neutral[NAME_BOX]).mean()
    corner = np.abs(personal[CORNER] - neutral[CORNER]).mean()
    assert box > 10 and corner < 2, (box, corner)


def test_the_neutral_film_is_made_once_for_everyone_it_fits(
    shop: tuple[Store, str], settings: Settings
) -> None:
    store, _ = shop
    template = parse_template(TEMPLATE)
    first = render_person(store, template, None, settings=settings, now=NOW)
    made = first.mp4.stat().st_ino
    # two ids nobody holds, and a known person who refused personalization
    refused = next_person_id(store) + 500
    add_person(store, refused, {"first_name": "Zoé"}, 0.9)
    refuse_personalization(store, refused)
    seen: list[tuple[int, int]] = []
    films = render_many(
        store, template, [10**9, 10**9 + 1, refused], settings=settings, now=NOW,
        on_progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen[-1] == (3, 3) and seen == sorted(seen)
    assert {f.content_hash for f in films} == {first.content_hash}
    assert all(f.neutral and f.reused_scenes == f.scenes for f in films)
    assert first.mp4.stat().st_ino == made  # not written again
    assert len(list((settings.video_dir / "scenes").glob("*.mp4"))) == 4
    assert len(list(settings.video_dir.glob("*.mp4"))) == 1


def test_unreliable_name_falls_back_and_shared_scenes_are_reused(
    shop: tuple[Store, str], settings: Settings
) -> None:
    store, _ = shop
    template = parse_template(TEMPLATE)
    unsure = next_person_id(store) + 600
    add_person(store, unsure, {"first_name": "Léa"}, 0.3)  # below the 0.6 threshold
    nobody = render_person(store, template, None, settings=settings, now=NOW)
    film = render_person(store, template, unsure, settings=settings, now=NOW)
    assert "Léa" not in film.subtitles.read_text(encoding="utf-8")
    assert film.content_hash == nobody.content_hash and film.neutral
    # C2 has orders and a store, not the title of anybody else: the title is made for him
    paul = render_person(store, template, person_id(store, "C2"), settings=settings, now=NOW)
    assert not paul.neutral and paul.reused_scenes < paul.scenes


def test_hostile_first_names_render_as_bounded_text(
    shop: tuple[Store, str], settings: Settings
) -> None:
    store, _ = shop
    template = parse_template({**TEMPLATE, "scenes": TEMPLATE["scenes"][:1]})
    names = ["{{ 7*7 }}", "<script>alert(1)</script>", "A" * 10_000, "مرحبا שלום 👋🏽 ok"]
    start = next_person_id(store) + 700
    for i, name in enumerate(names):
        add_person(store, start + i, {"first_name": name}, 0.9)
    films = render_many(store, template, [start + i for i in range(4)], settings=settings,
                        now=NOW)  # fmt: skip
    texts = [f.subtitles.read_text(encoding="utf-8") for f in films]
    assert "Bonjour {{ 7*7 }} !" in texts[0] and "49" not in texts[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in texts[1] and "<script>" not in texts[1]
    cue = texts[2].split("\n")[4]
    assert cue.startswith("Bonjour AAAA") and cue.endswith("…") and len(cue) <= MAX_SAID
    assert "مرحبا שלום 👋🏽 ok" in texts[3]
    for film in films:
        assert float(probe(film.mp4)["format"]["duration"]) == pytest.approx(1.2, abs=0.1)
        assert not film.neutral
    # each name was drawn: four different pictures where the greeting is
    boxes = [frame(f.mp4, 0.6)[NAME_BOX] for f in films]
    assert all(np.abs(a - b).mean() > 1 for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_chart_store_and_products_read_the_persons_data(shop: tuple[Store, str]) -> None:
    store, _ = shop
    template = parse_template(TEMPLATE)
    people = [person_id(store, c) for c in ("C1", "C2", "C3")]
    marie, paul, anonymous, nobody = read_viewers(store, template, [*people, None], NOW)
    months = [(m.year, m.month) for m in month_starts(NOW, 12)]
    assert months[0] == (2025, 4) and months[-1] == (2026, 3)
    assert marie.spend == tuple(monthly_spend("C1", months))
    assert marie.spend is not None and sum(marie.spend) == pytest.approx(
        39 + 2 * 19.5 + 79 + 3 * 12 - 12 + 2 * 16 + 39
    )
    assert paul.spend == tuple(monthly_spend("C2", months))
    # her home store trait wins over the store of most of her orders; his, the most orders
    assert marie.store is not None and marie.store["store_id"] == "S2"
    assert paul.store is not None and paul.store["store_id"] == "S1"
    assert anonymous.store is not None and anonymous.store["store_id"] == "S2"
    assert nobody.store is None and nobody.spend is None and nobody.neutral
    best = [p.product_code for p in recommend(store, None, k=3)]
    assert [p["product_code"] for p in nobody.products] == best
    assert not nobody.products_personal and marie.products_personal
    assert len(marie.products) == 3


def test_the_shipped_example_makes_a_twenty_second_film(
    shop: tuple[Store, str], settings: Settings
) -> None:
    store, _ = shop
    example = Path(__file__).parents[2] / "src/surmesure/video/examples/year_in_review.yaml"
    template = load_template(example)
    film = render_person(store, template, person_id(store, "C1"), settings=settings, now=NOW)
    found = probe(film.mp4)
    assert float(found["format"]["duration"]) == pytest.approx(20.0, abs=0.1)
    assert len(found["streams"]) == 2
    vtt = film.subtitles.read_text(encoding="utf-8")
    assert "Bonjour Marie !" in vtt and "Nantes" in vtt and not film.neutral
