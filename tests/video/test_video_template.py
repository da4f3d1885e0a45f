"""Video template documents: validation with the faulty field's path and the fix, the files a
background may read, bounded texts and the subtitles' escaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from surmesure.errors import InvalidInput
from surmesure.video import load_template, parse_template
from surmesure.video.draw import font, wrap
from surmesure.video.plan import MAX_DRAWN, CompiledVideo, ScenePlan, bounded, subtitles
from surmesure.video.template import VideoTemplate

TITLE = {"kind": "title", "duration": 2, "texts": [{"text": "Bonjour"}], "say": "Bonjour"}


def doc(**changes: Any) -> dict[str, Any]:
    return {"name": "t", "scenes": [TITLE], **changes}


@pytest.mark.parametrize(
    ("document", "field", "hint"),
    [
        (doc(scenes=[{**TITLE, "duration": -1}]), "scenes[0].duration", "greater than 0"),
        (doc(scenes=[{**TITLE, "kind": "cartoon"}]), "scenes[0]", "title, chart"),
        (doc(scenes=[{"duration": 2}]), "scenes[0]", "kind"),
        (doc(scenes=[{**TITLE, "colour": "red"}]), "scenes[0].colour", "remove this field"),
        (doc(scenes=[{**TITLE, "texts": [{"text": "x", "colour": "red"}]}]),
         "scenes[0].texts[0].colour", ""),
        (doc(locale="de"), "locale", "fr"),
        (doc(width=1281), "width", ""),
        (doc(fields={"first_name": {"fallback": ""}}), "fields.first_name.trait", "trait: NAME"),
        (doc(scenes=[{**TITLE, "transition": {"fade_in": 1.5, "fade_out": 1}}]), "scenes[0]",
         ""),
        (doc(scenes=[{**TITLE, "background": {"kind": "gradient", "top": "#000000"}}]),
         "scenes[0].background.bottom", "add this field"),
        (doc(scenes=[]), "scenes", ""),
        (doc(scenes=[{**TITLE, "transition": {"crossfade": 0.5}}]),
         "scenes[0].transition.crossfade", "fade_out"),
        (doc(scenes=[{**TITLE, "transition": {"crossfade": 0.5}},
                     {**TITLE, "background": {"kind": "picture", "path": "hall.mp4"}}]),
         "scenes[0].transition.crossfade", "around a clip"),
        (["not", "a", "mapping"], "(document)", "name:"),
    ],
)  # fmt: skip
def test_a_bad_document_names_the_field_and_the_fix(document: Any, field: str, hint: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_template(document)
    assert caught.value.field == field, caught.value
    assert hint in str(caught.value)


def test_a_good_document_keeps_its_defaults() -> None:
    template = parse_template(doc())
    assert (template.width, template.height, template.fps) == (1280, 720, 25)
    assert template.espeak_voice == "fr"
    assert parse_template(doc(locale="en")).espeak_voice == "en"
    assert template.frames(template.scenes[0]) == 50
    assert parse_template(doc(scenes=[{**TITLE, "duration": 1.01}])).frames(
        template.scenes[0]
    ) == 50  # fmt: skip


def test_a_template_with_bad_jinja_fails_naming_the_text() -> None:
    template = parse_template(doc(scenes=[{**TITLE, "say": "{% if %}"}]))
    with pytest.raises(InvalidInput) as caught:
        CompiledVideo(template)
    assert "scenes[0].say" in str(caught.value)


def test_backgrounds_are_read_inside_the_templates_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(b"")
    folder = tmp_path / "templates"
    folder.mkdir()
    path = folder / "t.yaml"
    for given, words in [
        ("../secret.png", "outside the template's folder"),
        ("/etc/passwd", "outside the template's folder"),
        ("missing.png", "does not exist"),
        ("notes.txt", "neither a picture nor a clip"),
    ]:
        path.write_text(
            "name: t\nscenes:\n  - kind: title\n    background: {kind: picture, path: "
            f"'{given}'}}\n"
        )
        template = load_template(path)
        with pytest.raises(InvalidInput) as caught:
            CompiledVideo(template).plans(_nobody(template), _now())
        assert words in str(caught.value) and caught.value.field == "background.path"


def test_texts_are_bounded_wrapped_and_cleaned() -> None:
    assert bounded("a\x00b\u202ec", 10) == "abc"
    long = bounded("x" * 10_000, MAX_DRAWN)
    assert len(long) == MAX_DRAWN and long.endswith("…")
    face = font(40, True)
    rows = wrap("mot " * 200 + "A" * 500, face, 600, 2)
    assert len(rows) == 2 and rows[-1].endswith("…")
    assert all(face.getlength(r) <= 600 for r in rows)
    assert wrap("A" * 500, face, 300, 6)[0] == "A" * len(wrap("A" * 500, face, 300, 6)[0])


def test_subtitles_escape_markup_and_time_each_scene() -> None:
    plans = [
        ScenePlan({}, "<b>Bonjour</b> & --> toi", False, 50, 25),
        ScenePlan({}, "", False, 25, 25),
        ScenePlan({}, "Fin", False, 90_000, 25),
    ]
    vtt = subtitles(plans)
    assert "&lt;b&gt;Bonjour&lt;/b&gt; &amp; --&gt; toi" in vtt
    assert "00:00:00.000 --> 00:00:02.000" in vtt
    assert "00:00:03.000 --> 01:00:03.000" in vtt and "\n2\n" not in vtt


def _nobody(template: VideoTemplate) -> Any:
    from surmesure.decide.content import NOBODY
    from surmesure.video.people import Viewer

    return Viewer(None, NOBODY, {}, False)


def _now() -> Any:
    from datetime import datetime

    return datetime(2026, 3, 10)


def test_a_missing_tool_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surmesure.video.encode import VideoToolError, speak

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VideoToolError) as caught:
        speak("Bonjour", "fr", tmp_path / "say.wav")
    assert "espeak-ng is not installed" in str(caught.value)
    assert "make system" in str(caught.value)


def test_a_failing_tool_gives_its_last_words(tmp_path: Path) -> None:
    from surmesure.video.encode import VideoToolError, probe

    (tmp_path / "broken.mp4").write_bytes(b"not a film")
    with pytest.raises(VideoToolError) as caught:
        probe(tmp_path / "broken.mp4")
    assert "ffprobe failed" in str(caught.value) and "broken.mp4" in str(caught.value)
