"""``surmesure video render`` for one person and for a batch, and films over a picture, over a
looping clip and with product pictures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from PIL import Image
from video_world import NOW, frame, person_id
from video_world import shop_fixture as shop_fixture  # the fixture shop

from conftest import invoke
from surmesure.config import get_settings
from surmesure.store import Store, schema
from surmesure.video import load_template, render_person
from surmesure.video.encode import probe

EXAMPLE = Path(__file__).parents[2] / "src/surmesure/video/examples/year_in_review.yaml"


def short(folder: Path, scenes: str, head: str = "") -> Path:
    """A template of ``scenes`` in ``folder`` (``head``: more top-level settings)."""
    path = folder / "short.yaml"
    fields = "fields:\n  first_name: {trait: first_name, fallback: ''}\n"
    path.write_text(f"name: short\n{fields}{head}scenes:\n{scenes}", encoding="utf-8")
    return path


TITLE = (
    "  - kind: title\n    duration: 1\n    texts: [{text: 'Bonjour {{ person.first_name }}'}]\n"
    "    say: 'Bonjour {{ person.first_name }}'\n"
)


def test_render_one_person_and_the_neutral_film(
    shop: tuple[Store, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, url = shop
    monkeypatch.setenv("SURMESURE_VIDEO_DIR", str(tmp_path / "videos"))
    template = short(tmp_path, TITLE)
    out = tmp_path / "out" / "film.mp4"
    done = invoke(monkeypatch, url, "video", "render", str(template), "--person",
                  "customer_id:C1", "--out", str(out), "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    said = orjson.loads(done.stdout)
    assert said["neutral"] is False and said["duration_s"] == 1.0
    assert out.exists() and out.with_suffix(".jpg").exists()
    assert "Bonjour Marie" in out.with_suffix(".vtt").read_text(encoding="utf-8")
    assert float(probe(out)["format"]["duration"]) == pytest.approx(1.0, abs=0.1)
    with store.connect() as conn:
        audited = conn.execute(
            sa.select(schema.audit_log.c.person_id).where(
                schema.audit_log.c.action == "video.render"
            )
        ).scalars().all()  # fmt: skip
    assert person_id(store, "C1") in audited
    neutral = tmp_path / "neutral.mp4"
    done = invoke(monkeypatch, url, "video", "render", str(template), "--neutral", "--out",
                  str(neutral))  # fmt: skip
    assert done.exit_code == 0, done.output
    printed = " ".join(done.output.split())
    assert "1.00 s, neutral, 1 scenes" in printed
    assert "Marie" not in neutral.with_suffix(".vtt").read_text(encoding="utf-8")


def test_render_a_batch_from_a_file(
    shop: tuple[Store, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, url = shop
    monkeypatch.setenv("SURMESURE_VIDEO_DIR", str(tmp_path / "videos"))
    people = [person_id(store, "C1"), person_id(store, "C2"), 10**9]
    listing = tmp_path / "people.csv"
    listing.write_text("person_id\n" + "\n".join(map(str, people)) + "\n")
    done = invoke(monkeypatch, url, "video", "render", str(short(tmp_path, TITLE)), "--people",
                  str(listing), "--out-dir", str(tmp_path / "films"), "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    said = orjson.loads(done.stdout)
    assert (said["films"], said["distinct"], said["neutral"]) == (3, 3, 1)
    texts = [(tmp_path / "films" / f"{p}.vtt").read_text(encoding="utf-8") for p in people]
    assert "Bonjour Marie" in texts[0] and "Bonjour Paul" in texts[1]
    assert "Bonjour\n" in texts[2] or texts[2].rstrip().endswith("Bonjour")
    with store.begin() as conn:
        for person in people[:2]:
            conn.execute(
                schema.segment_members.insert().values(
                    segment="video_fans", person_id=person, entered_at=NOW
                )
            )
    done = invoke(monkeypatch, url, "video", "render", str(short(tmp_path, TITLE)), "--segment",
                  "video_fans", "--out-dir", str(tmp_path / "fans"))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "2 films" in " ".join(done.output.split())
    assert sorted(p.name for p in (tmp_path / "fans").glob("*.mp4")) == sorted(
        f"{p}.mp4" for p in people[:2]
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--out", "x.mp4"], "one of --person, --neutral"),
        (["--person", "1", "--segment", "s", "--out", "x.mp4"], "one of --person"),
        (["--person", "1"], "--out is missing"),
        (["--segment", "s"], "--out-dir is missing"),
        (["--person", "customer_id:nobody", "--out", "x.mp4"], "Nobody is known"),
    ],
)
def test_bad_calls_say_what_to_give(
    shop: tuple[Store, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    words: str,
) -> None:
    _, url = shop
    monkeypatch.setenv("SURMESURE_VIDEO_DIR", str(tmp_path / "videos"))
    done = invoke(monkeypatch, url, "video", "render", str(EXAMPLE), *args)
    assert done.exit_code != 0
    assert words in " ".join(done.output.split())


def test_picture_and_clip_backgrounds_and_product_pictures(
    shop: tuple[Store, str], tmp_path: Path
) -> None:
    store, _ = shop
    Image.new("RGB", (64, 64), (200, 20, 20)).save(tmp_path / "red.png")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0x1414c8:s=160x90:r=25:d=0.5",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp_path / "blue.mp4")],
        check=True,
    )  # fmt: skip
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for code in ("P1", "P2", "P3", "P4", "P5"):
        Image.new("RGB", (50, 50), (20, 200, 20)).save(pictures / f"{code}.png")
    scenes = (
        "  - {kind: title, duration: 1, background: {kind: picture, path: red.png},"
        " transition: {fade_in: 0, fade_out: 0}, texts: [{text: 'Bonjour', y: 0.2}]}\n"
        "  - {kind: title, duration: 1.2, background: {kind: picture, path: blue.mp4},"
        " transition: {fade_in: 0, fade_out: 0}, texts: [{text: 'Bonjour', y: 0.2}]}\n"
        "  - {kind: products, duration: 1, count: 3, title: Pour vous,"
        " transition: {fade_in: 0, fade_out: 0}}\n"
    )
    template = load_template(short(tmp_path, scenes, "width: 640\nheight: 360\n"))
    settings = get_settings().model_copy(
        update={"video_dir": tmp_path / "videos", "video_pictures_dir": pictures}
    )
    film = render_person(store, template, person_id(store, "C1"), settings=settings, now=NOW)
    assert float(probe(film.mp4)["format"]["duration"]) == pytest.approx(3.2, abs=0.1)
    corner = (slice(300, 350), slice(10, 60))
    red = frame(film.mp4, 0.5, (640, 360))[corner].mean(axis=(0, 1))
    blue = frame(film.mp4, 1.6, (640, 360))[corner].mean(axis=(0, 1))
    assert red[0] > 150 and red[2] < 60, red
    assert blue[2] > 150 and blue[0] < 60, blue
    cards = frame(film.mp4, 2.7, (640, 360))
    green = (cards[..., 1] > 150) & (cards[..., 0] < 70) & (cards[..., 2] < 70)
    assert green.sum() > 3 * 40 * 40, green.sum()


def test_a_crossfade_dissolves_into_the_next_scene(shop: tuple[Store, str], tmp_path: Path) -> None:
    store, _ = shop
    Image.new("RGB", (64, 64), (200, 20, 20)).save(tmp_path / "red.png")
    scenes = (
        "  - {kind: title, duration: 1, background: {kind: picture, path: red.png},"
        " transition: {fade_in: 0, fade_out: 0, crossfade: 0.4}}\n"
        "  - {kind: title, duration: 1, background: {kind: solid, colour: '#1414c8'},"
        " transition: {fade_in: 0, fade_out: 0}, texts: [{text: '{{ person.first_name }}'}]}\n"
    )
    template = load_template(short(tmp_path, scenes, "width: 640\nheight: 360\n"))
    settings = get_settings().model_copy(update={"video_dir": tmp_path / "videos"})
    marie = render_person(store, template, person_id(store, "C1"), settings=settings, now=NOW)
    paul = render_person(store, template, person_id(store, "C2"), settings=settings, now=NOW)
    assert float(probe(marie.mp4)["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    corner = (slice(300, 350), slice(10, 60))
    before, middle, after = (
        frame(marie.mp4, at, (640, 360))[corner].mean(axis=(0, 1)) for at in (0.3, 0.8, 1.3)
    )
    assert before[0] > 170 and before[2] < 50, before
    assert 70 < middle[0] < 150 and 70 < middle[2] < 150, middle
    assert after[2] > 170 and after[0] < 50, after
    # the first scene shows the second's picture as it ends: each person's is their own
    assert marie.reused_scenes == 0 and paul.reused_scenes == 0
