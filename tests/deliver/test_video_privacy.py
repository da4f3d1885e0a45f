"""A film keeps no personal data beyond itself: its personal scene clips are not cached, the
``video render`` command leaves no personal film behind, and erasure then leaves no file in
the video folder with the person's name, on both stores; films shared with others stay."""

from __future__ import annotations

from pathlib import Path

import pytest
from campaign_world import add_people
from video_campaign_world import save, video_campaign

from conftest import invoke
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.deliver import documents, video
from surmesure.protect.erase import erase_person
from surmesure.store import Store
from surmesure.video import load_template, render_person
from surmesure.video.people import read_viewers
from surmesure.video.plan import CompiledVideo

# a store scene saying the name (its kind's data is neutral here: nobody has a store), a
# chart with no orders crossfading into the title with the name, a neutral closing scene
TEMPLATE = """\
name: {name}
locale: fr
width: 160
height: 90
fps: 10
fields:
  first_name: {{trait: first_name, fallback: ""}}
scenes:
  - kind: store
    duration: 1.0
    title: "{title}"
    neutral_text: "Nos magasins"
    say: "Bonjour {{{{ person.first_name }}}}"
  - kind: chart
    duration: 1.0
    title: "Votre année"
    neutral_text: "Une belle année"
    transition: {{crossfade: 0.2}}
  - kind: title
    duration: 1.0
    texts: [{{text: "{{{{ person.first_name }}}}"}}]
    say: "Merci {{{{ person.first_name }}}}"
  - kind: title
    duration: 1.0
    texts: [{{text: "À bientôt"}}]
"""


def _template(folder: Path, name: str, title: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(TEMPLATE.format(name=name, title=title), encoding="utf-8")
    return path


def _holding(folder: Path, text: str) -> list[str]:
    """The files under ``folder`` whose bytes hold ``text``."""
    needle = text.encode()
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if
                  p.is_file() and needle in p.read_bytes())  # fmt: skip


def test_erasure_leaves_no_file_with_the_name_and_no_personal_clip_is_cached(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add_people(store, tmp_path, 3)
    now = utcnow()
    folder = tmp_path / "videos"
    settings = get_settings().model_copy(update={"video_dir": folder})
    store.follow(settings)  # the eraser reads the store's settings
    spring = _template(tmp_path, "spring_film", "Au printemps")
    autumn = _template(tmp_path, "autumn_film", "En automne")
    save(store, video_campaign("spring", spring), now, tmp_path)
    save(store, video_campaign("autumn", autumn), now, tmp_path)
    with store.connect() as conn:
        spring_doc, _ = documents.get(conn, "spring")
        autumn_doc, _ = documents.get(conn, "autumn")
    video.render(store, spring_doc, [ids[1], ids[2]], settings=settings, now=now)
    video.render(store, autumn_doc, [ids[1]], settings=settings, now=now)
    nobody = load_template(spring)
    neutral_plans = CompiledVideo(nobody).plans(read_viewers(store, nobody, [None], now)[0], now)
    neutral = render_person(store, nobody, None, settings=settings, now=now)
    # the command line's film of someone no campaign shows it to: copied out, not kept
    monkeypatch.setenv("SURMESURE_VIDEO_DIR", str(folder))
    out = tmp_path / "out" / "film.mp4"
    done = invoke(monkeypatch, store.url, "video", "render", str(autumn), "--person",
                  "customer_id:C3", "--out", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "Bonjour Name3" in out.with_suffix(".vtt").read_text(encoding="utf-8")
    assert _holding(folder, "Name3") == []

    # films of both campaigns hold the name in their subtitles; no cached clip is personal:
    # each is one of the neutral film's (the closing scene is the same for everybody)
    assert len(_holding(folder, "Name1")) == 2 and len(_holding(folder, "Name2")) == 1
    cached = {p.stem for p in (folder / "scenes").glob("*.mp4")}
    assert cached == {p.hash for p in neutral_plans}
    assert [p.name for p in folder.iterdir() if p.name.startswith((".", "tmp"))] == []

    erased = erase_person(store, "customer_id:C1", confirmed=True)
    assert sorted(Path(p).suffix for p, what in erased.files.items() if what == "removed") == [
        ".jpg", ".jpg", ".mp4", ".mp4", ".vtt", ".vtt"
    ]  # fmt: skip
    assert _holding(folder, "Name1") == []
    assert len(_holding(folder, "Name2")) == 1  # another person's film stays
    assert neutral.mp4.exists() and neutral.subtitles.exists()  # shown to many, kept
    assert {p.stem for p in (folder / "scenes").glob("*.mp4")} == cached
