"""The demo's two films: the personal one speaks to its customer by name, the neutral one, of a
customer who refused personalization, shows nothing of them; both are real 720p films."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import copy_demo, invoke_json


def _probe(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _person(monkeypatch: pytest.MonkeyPatch, url: str, person: int) -> dict[str, Any]:
    return invoke_json(monkeypatch, url, "person", "show", str(person))


def _first_name(found: dict[str, Any]) -> str | None:
    names = [t["value"] for t in found["traits"] if t["name"] == "first_name"]
    return names[0] if names else None


def test_demo_renders_a_personal_and_a_neutral_film(
    demo_world: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, report = demo_world
    url = copy_demo(folder, tmp_path)
    videos = report["videos"]
    personal, neutral = videos["personal"], videos["neutral"]
    assert personal["person_id"] != neutral["person_id"]
    assert personal["neutral"] is False and neutral["neutral"] is True
    for film in (personal, neutral):
        probe = _probe(Path(film["film"]))
        video = [s for s in probe["streams"] if s["codec_type"] == "video"]
        audio = [s for s in probe["streams"] if s["codec_type"] == "audio"]
        assert [(s["codec_name"], s["width"], s["height"]) for s in video] == [("h264", 1280, 720)]
        assert [s["codec_name"] for s in audio] == ["aac"]
        assert abs(float(probe["format"]["duration"]) - film["duration_s"]) < 0.1
        assert 15 <= film["duration_s"] <= 25
        assert Path(film["poster"]).read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    name = _first_name(_person(monkeypatch, url, personal["person_id"]))
    assert name, "the personal film's customer has a first name"
    spoken = Path(personal["subtitles"]).read_text()
    assert spoken.startswith("WEBVTT") and name in spoken
    refusing = _person(monkeypatch, url, neutral["person_id"])
    assert any(c["purpose"] == "personalization" and not c["granted"] for c in refusing["consents"])
    other = _first_name(refusing)
    silent = Path(neutral["subtitles"]).read_text()
    assert silent.startswith("WEBVTT") and (other is None or other not in silent)
    # the neutral film is the same for everyone: nothing in it depends on who they are
    assert "€" not in silent and "€" in spoken
