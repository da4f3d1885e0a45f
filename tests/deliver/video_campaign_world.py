"""A small world for video campaign tests: a short video template, a campaign whose e-mail
shows the film's poster linking to the person's video page, and films made with ffmpeg for
the tests that do not need the renderer."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from campaign_world import document

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.deliver import documents, video
from surmesure.store import Store
from surmesure.video import Film

SHOP = "https://shop.example.com/offres"
TEMPLATE = """\
name: short_hello
locale: fr
width: 320
height: 180
fps: 10
fields:
  first_name: {trait: first_name, fallback: ""}
scenes:
  - kind: title
    duration: 2.4
    transition: {fade_in: 0.2, fade_out: 0.2}
    texts:
      - text: "Bonjour{% if person.first_name %} {{ person.first_name }}{% endif %}"
    say: "Bonjour{% if person.first_name %} {{ person.first_name }}{% endif %}"
"""
EMAIL_HTML = (
    "<html><body><p>Bonjour {{ person.first_name }}</p>"
    '<a href="{{ video_link }}"><img src="{{ video_poster }}" alt="Votre film" width="320"></a>'
    "</body></html>"
)


def write_template(folder: Path) -> Path:
    path = folder / "short_hello.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


def video_campaign(name: str, template: Path, **overrides: Any) -> dict[str, Any]:
    """A campaign whose e-mail shows the film's poster, linking to the video page."""
    return document(
        name=name,
        channels={
            "email": {
                "subject": "Votre film",
                "html": EMAIL_HTML,
                "text": "Votre film : {{ video_link }}",
                "fields": {"first_name": {"trait": "first_name", "fallback": ""}},
            }
        },
        policy={"order": ["email"]},
        video={"template": str(template), "buttons": [{"label": "Mes offres", "url": SHOP}]},
        **overrides,
    )


def save(store: Store, doc: dict[str, Any], at: datetime, base: Path) -> None:
    documents.save(store, documents.parse(doc), at, base)


def fake_film(folder: Path, seed: int) -> Film:
    """A 2-second film (a test pattern and a tone whose pitch is ``seed``'s), its poster and
    subtitles, named by their content as the renderer names its films."""
    folder.mkdir(parents=True, exist_ok=True)
    draft = folder / f"draft{seed}.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=size=320x180:rate=10:duration=2",
         "-f", "lavfi", "-i", f"sine=frequency={300 + 50 * seed}:duration=2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast",
         "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(draft)],
        check=True,
    )  # fmt: skip
    digest = hashlib.sha256(draft.read_bytes()).hexdigest()
    mp4 = draft.rename(folder / f"{digest}.mp4")
    poster = folder / f"{digest}.jpg"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(mp4), "-frames:v", "1", str(poster)],
        check=True,
    )
    subtitles = folder / f"{digest}.vtt"
    subtitles.write_text(f"WEBVTT\n\n00:00.000 --> 00:02.000\nFilm {seed}\n", encoding="utf-8")
    return Film(digest, mp4, poster, subtitles, 2.0, False, 1, 0)


def record_films(store: Store, campaign: str, films: dict[int, Film], at: datetime) -> None:
    with store.begin() as conn:
        video.record(conn, campaign, films, at)


@dataclass
class World:
    """A server of video pages, the people of the world and the films recorded for them."""

    base: str
    settings: Settings
    ids: dict[int, int]
    films: dict[int, Film]

    def token(self, i: int, campaign: str = "spring") -> str:
        link = video.video_link(campaign, self.ids[i], utcnow(), self.settings)
        return link.rsplit("/", 1)[1]
