"""Retention of the video folder, on both stores: films whose links have expired and films
no record names go, with their records; cached clips unused for the days set go; what an
interrupted render left goes; everything still shown, or just made, stays."""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from campaign_world import add_people

from conftest import invoke
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.deliver import video
from surmesure.protect.retention import run_retention
from surmesure.store import Store, schema
from surmesure.video import Film

DAY = 86_400.0
DAYS = {"videos": 30}  # the other kinds kept for ever


def _aged(path: Path, days: float) -> Path:
    """``path`` last used ``days`` ago."""
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


def _film(folder: Path, seed: str, days: float = 0.0) -> Film:
    """A film's three files (their content is not a film: retention reads names and times)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    paths = [folder / f"{digest}.{ext}" for ext in ("mp4", "jpg", "vtt")]
    for path in paths:
        path.write_bytes(seed.encode())
        _aged(path, days)
    return Film(digest, *paths, duration_s=2.0, neutral=False, scenes=1, reused_scenes=0)


def _clip(folder: Path, seed: str, days: float) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    for ext in ("mp4", "jpg"):
        path = folder / "scenes" / f"{digest}.{ext}"
        path.write_bytes(b"clip")
        _aged(path, days)
    return digest


def _sent(store: Store, campaign: str, person: int, at: datetime | None, status: str) -> None:
    with store.begin() as conn:
        conn.execute(
            schema.messages.insert().values(
                message_id=f"{campaign}-{person}", campaign=campaign, version=1,
                person_id=person, channel="email", step=0, status=status, attempts=1,
                planned_at=at or utcnow(), updated_at=at or utcnow(), sent_at=at,
            )
        )  # fmt: skip


def _state(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_retention_removes_what_no_page_shows_and_clips_unused(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add_people(store, tmp_path, 6)
    folder = tmp_path / "videos"
    (folder / "scenes").mkdir(parents=True)
    store.follow(get_settings().model_copy(update={"video_dir": folder, "page_link_max_days": 90}))
    now = utcnow()
    long_ago = now - timedelta(days=100)
    shown = _film(folder, "shown now")  # rendered today
    expired = _film(folder, "links expired", days=100)  # rendered then, no message since
    resent = _film(folder, "sent again", days=100)  # its e-mail left 10 days ago
    waiting = _film(folder, "still to leave", days=100)  # its e-mail is still planned
    shared = _film(folder, "shared", days=100)  # one expired record, one live
    stray = _film(folder, "made by hand", days=2)  # no record names it
    fresh = _film(folder, "being recorded")  # no record yet: a render is recording it
    with store.begin() as conn:
        video.record(conn, "spring", {ids[1]: shown}, now)
        video.record(conn, "spring", {ids[2]: expired, ids[3]: resent, ids[4]: waiting}, long_ago)
        video.record(conn, "winter", {ids[5]: shared}, long_ago)
        video.record(conn, "summer", {ids[6]: shared}, now)
    _sent(store, "spring", ids[3], now - timedelta(days=10), "sent")
    _sent(store, "spring", ids[4], None, "planned")
    _sent(store, "spring", ids[2], now - timedelta(days=95), "sent")  # before the links' life
    old_clip, used_clip = _clip(folder, "old", 40), _clip(folder, "used", 5)
    (folder / "tmpq1w2e3").mkdir()  # ffmpeg's scratch folder of a killed render
    _aged(folder / "tmpq1w2e3", 3)
    partial = folder / f".{stray.mp4.name}.123.456"  # a file a killed render was writing
    partial.touch()
    _aged(partial, 3)
    personal = folder / ".personal-now"  # a render making personal clips right now
    personal.mkdir()
    (folder / "notes.txt").write_text("kept: not a name the renderer writes")
    _aged(folder / "notes.txt", 400)
    before = _state(folder)

    monkeypatch.setenv("SURMESURE_VIDEO_DIR", str(folder))
    monkeypatch.setenv("SURMESURE_RETENTION_DAYS", '{"videos": 30}')
    said = invoke(monkeypatch, store.url, "retention", "run", "--dry-run")
    assert said.exit_code == 0, said.output
    words = " ".join(said.output.split())
    found = r"films no page shows 2, clips unused since [0-9-]+ [0-9:]+ 1, leftovers of"
    assert re.search(found + r" interrupted renders 2\.", words), words
    dry = run_retention(store, DAYS, dry_run=True)
    assert dry.removed["video_films"] == 2  # the expired records, the shared film's one too
    assert dry.files == {"films": 2, "clips": 1, "leftovers": 2}
    assert _state(folder) == before  # a dry run removes nothing
    f = schema.video_films
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(f)).scalar_one() == 6

    done = run_retention(store, DAYS)
    assert done.removed == dry.removed and done.files == dry.files
    assert done.cutoffs["videos"] is not None
    gone = {p.name for film in (expired, stray) for p in (film.mp4, film.poster, film.subtitles)}
    gone |= {f"scenes/{old_clip}.mp4", f"scenes/{old_clip}.jpg", "tmpq1w2e3", partial.name}
    assert before - _state(folder) == gone
    for film in (shown, resent, waiting, shared, fresh):
        assert film.mp4.exists() and film.poster.exists() and film.subtitles.exists()
    assert (folder / "scenes" / f"{used_clip}.mp4").exists() and personal.is_dir()
    with store.connect() as conn:
        left = sorted(
            (str(r[0]), int(r[1])) for r in conn.execute(sa.select(f.c.campaign, f.c.node_id))
        )
    assert left == sorted(
        [("spring", ids[1]), ("spring", ids[3]), ("spring", ids[4]), ("summer", ids[6])]
    )
