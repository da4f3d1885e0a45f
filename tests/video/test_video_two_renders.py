"""Two processes making the same personal film in one folder at once: each writes whole
files and renames them into place, so the film plays whole, its personal clips are gone and
nothing half-written is left; its name is its content hash whatever the person's name says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from surmesure.decide.content import NOBODY
from surmesure.video import parse_template
from surmesure.video.encode import probe
from surmesure.video.people import Viewer
from surmesure.video.plan import CompiledVideo
from surmesure.video.render import films_of

HOSTILE = "../../évadé/{{ 7*7 }}"
SCRIPT = """
import sys
from datetime import datetime
from pathlib import Path
from surmesure.decide.content import NOBODY
from surmesure.video import parse_template
from surmesure.video.people import Viewer
from surmesure.video.plan import CompiledVideo
from surmesure.video.render import films_of

hello = "Bonjour {{ person.first_name }}"
template = parse_template({
    "name": "two_renders", "width": 160, "height": 90, "fps": 10,
    "fields": {"first_name": {"trait": "first_name", "fallback": ""}},
    "scenes": [
        {"kind": "title", "duration": 1.0, "texts": [{"text": hello}], "say": hello,
         "transition": {"crossfade": 0.3}},
        {"kind": "title", "duration": 1.0, "texts": [{"text": "Merci"}], "say": "Merci"},
    ],
})
now = datetime(2026, 3, 10)
viewer = Viewer(None, NOBODY, {"first_name": sys.argv[2]}, True)
plans = CompiledVideo(template).plans(viewer, now)
(film,) = films_of([plans], Path(sys.argv[1]), workers=2)
print(film.content_hash, film.neutral, [p.personal for p in plans])
"""


def test_two_processes_make_the_same_film_whole(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(folder), HOSTILE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
    (said,) = {out for out, _ in outputs}
    content_hash, neutral, personal = said.split(" ", 2)
    # the first scene says the name (and crossfades into the second, which is neutral)
    assert neutral == "False" and personal.strip() == "[True, False]"
    assert re.fullmatch(r"[0-9a-f]{64}", content_hash)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{content_hash}.{ext}" for ext in ("jpg", "mp4", "vtt")] + ["scenes"]
    # the neutral closing scene alone is cached (a clip and its poster)
    assert sorted(p.suffix for p in (folder / "scenes").iterdir()) == [".jpg", ".mp4"]
    found = probe(folder / f"{content_hash}.mp4")
    assert float(found["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    vtt = (folder / f"{content_hash}.vtt").read_text(encoding="utf-8")
    assert f"Bonjour {HOSTILE}" in vtt and "Merci" in vtt


def test_a_scene_personal_for_one_and_neutral_for_another_is_made_for_each(
    tmp_path: Path,
) -> None:
    """The same picture may be one person's own (their name is the fallback's text) and
    the neutral one: made among the same films, each finds its clip where it belongs."""
    hello = "Bonjour {{ person.first_name }}"
    template = parse_template({
        "name": "same_picture", "width": 160, "height": 90, "fps": 10,
        "fields": {"first_name": {"trait": "first_name", "fallback": "à tous"}},
        "scenes": [
            {"kind": "title", "duration": 1.0, "texts": [{"text": hello}], "say": hello},
            {"kind": "title", "duration": 1.0, "say": "{% if personal %}Merci{% endif %}"},
        ],
    })  # fmt: skip
    compiled = CompiledVideo(template)
    now = datetime(2026, 3, 10)
    nobody = compiled.plans(Viewer(None, NOBODY, {"first_name": "à tous"}, False), now)
    named = compiled.plans(Viewer(None, NOBODY, {"first_name": "à tous"}, True), now)
    assert nobody[0].hash == named[0].hash and named[0].personal and not nobody[0].personal
    folder = tmp_path / "videos"
    first, second = films_of([nobody, named], folder, workers=2)
    assert first.content_hash != second.content_hash  # the second scene thanks the known
    assert first.mp4.is_file() and second.mp4.is_file()
    assert first.neutral and not second.neutral
    cached = {p.stem for p in (folder / "scenes").glob("*.mp4")}
    assert cached == {nobody[0].hash, nobody[1].hash, named[1].hash}
