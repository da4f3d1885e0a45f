"""Personalized films: one per person, made from scene clips shared by content.

A film is planned scene by scene for its person (:mod:`surmesure.video.plan`); each scene's
plan hash names its clip, ``<video_dir>/scenes/<hash>.mp4``, made once (drawn, spoken,
encoded: :mod:`surmesure.video.draw`, :mod:`surmesure.video.encode`) and reused by every film
that shows the same scene. The film's hash (of its scenes' hashes and its subtitles) names the
film: ``<video_dir>/<hash>.mp4`` (its clips joined without encoding again), ``.jpg`` (its
poster: the first scene's picture) and ``.vtt`` (WebVTT subtitles, one cue per scene). So the
neutral film, the one for anybody unknown, opted out of personalization or whose data is not
reliable, is made once for all of them.

A film is ``neutral`` when none of its scenes shows the person's own data (no field used, no
chart of their orders, no recommendation of their own, no store of theirs).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.store.engine import Store
from surmesure.video.draw import draw_scene
from surmesure.video.encode import join, make_clip
from surmesure.video.people import read_viewers
from surmesure.video.plan import CompiledVideo, ScenePlan, plan_hash, subtitles
from surmesure.video.template import VideoTemplate

#: people read and planned together by :func:`render_many`
BATCH = 500
#: films made together, per worker: their missing clips first, then the films (the progress
#: moves on after each such group)
CHUNK = 4


@dataclass(frozen=True)
class Film:
    """A person's film, as files in the video folder.

    ``content_hash`` names the three files (``mp4``: H.264 and AAC, index at the front;
    ``poster``: JPEG; ``subtitles``: WebVTT); ``duration_s`` is the sum of the scenes' lengths
    (whole frames); ``neutral``: no scene shows the person's own data; ``scenes``: how many it
    has, ``reused_scenes``: how many of them were not made for it (already there, made for an
    earlier person of the same call, or the whole film was already there)."""

    content_hash: str
    mp4: Path
    poster: Path
    subtitles: Path
    duration_s: float
    neutral: bool
    scenes: int
    reused_scenes: int


@dataclass(frozen=True)
class _Planned:
    plans: list[ScenePlan]
    vtt: str
    hash: str


def render_person(
    store: Store,
    template: VideoTemplate,
    person_id: int | None,
    *,
    settings: Settings,
    now: datetime | None = None,
) -> Film:
    """The film of ``person_id`` (``None``: nobody known, the neutral film) at ``now``
    (naive UTC; default: now), made unless it is already in ``settings.video_dir``."""
    return _render(store, template, [person_id], settings, now, None)[0]


def render_many(
    store: Store,
    template: VideoTemplate,
    person_ids: Sequence[int],
    *,
    settings: Settings,
    now: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Film]:
    """The film of each of ``person_ids``, in order: people read by batches of
    :data:`BATCH`, each scene clip and each film made once, ``settings.video_workers`` at a
    time. ``on_progress(done, total)`` is called as films are ready (every
    :data:`CHUNK` × workers films)."""
    return _render(store, template, list(person_ids), settings, now, on_progress)


def _render(
    store: Store,
    template: VideoTemplate,
    person_ids: Sequence[int | None],
    settings: Settings,
    now: datetime | None,
    on_progress: Callable[[int, int], None] | None,
) -> list[Film]:
    at = now or utcnow()
    folder = settings.video_dir
    (folder / "scenes").mkdir(parents=True, exist_ok=True)
    compiled = CompiledVideo(template, settings.video_pictures_dir)
    films: list[Film] = []
    total = len(person_ids)
    with ThreadPoolExecutor(max_workers=settings.video_workers) as pool:
        for start in range(0, total, BATCH):
            batch = person_ids[start : start + BATCH]
            viewers = read_viewers(store, template, batch, at)
            planned = [_planned(compiled.plans(v, at)) for v in viewers]
            step = CHUNK * settings.video_workers
            for first in range(0, len(planned), step):
                chunk = planned[first : first + step]
                made = _make_scenes(pool, folder, chunk)
                films += _make_films(pool, folder, chunk, made)
                if on_progress is not None:
                    on_progress(len(films), total)
    return films


def _planned(plans: list[ScenePlan]) -> _Planned:
    vtt = subtitles(plans)
    return _Planned(plans, vtt, plan_hash({"scenes": [p.hash for p in plans], "vtt": vtt}))


def clip_path(folder: Path, scene_hash: str) -> Path:
    return folder / "scenes" / f"{scene_hash}.mp4"


def _make_scenes(pool: ThreadPoolExecutor, folder: Path, planned: list[_Planned]) -> set[str]:
    """Make the clips the films of ``planned`` lack (whose film is not already there); the
    hashes of those made."""
    wanted: dict[str, ScenePlan] = {}
    for film in planned:
        if (folder / f"{film.hash}.mp4").exists():
            continue
        for plan in film.plans:
            if plan.hash not in wanted and not clip_path(folder, plan.hash).exists():
                wanted[plan.hash] = plan
    for _ in pool.map(lambda item: _make_clip(folder, *item), wanted.items()):
        pass
    return set(wanted)


def _make_clip(folder: Path, scene_hash: str, plan: ScenePlan) -> None:
    into = plan.spec.get("into")
    after = draw_scene(into) if into is not None else None
    make_clip(plan.spec, draw_scene(plan.spec), clip_path(folder, scene_hash), after)


def _make_films(
    pool: ThreadPoolExecutor, folder: Path, planned: list[_Planned], made: set[str]
) -> list[Film]:
    """Each film of ``planned``, joined unless already there; its scenes made by this call
    counted as made for the first film showing them."""
    todo: dict[str, _Planned] = {}
    credited: set[str] = set()
    films = []
    for film in planned:
        mp4 = folder / f"{film.hash}.mp4"
        fresh = not mp4.exists() and film.hash not in todo
        if fresh:
            todo[film.hash] = film
        mine = {p.hash for p in film.plans if p.hash in made and p.hash not in credited}
        if not fresh:
            mine = set()
        credited |= mine
        films.append(
            Film(
                content_hash=film.hash,
                mp4=mp4,
                poster=mp4.with_suffix(".jpg"),
                subtitles=mp4.with_suffix(".vtt"),
                duration_s=round(sum(p.duration_s for p in film.plans), 6),
                neutral=not any(p.personal for p in film.plans),
                scenes=len(film.plans),
                reused_scenes=sum(1 for p in film.plans if p.hash not in mine),
            )
        )
    for _ in pool.map(lambda f: _join(folder, f), todo.values()):
        pass
    return films


def _join(folder: Path, film: _Planned) -> None:
    mp4 = folder / f"{film.hash}.mp4"
    first = clip_path(folder, film.plans[0].hash).with_suffix(".jpg")
    _write(mp4.with_suffix(".jpg"), first.read_bytes())
    _write(mp4.with_suffix(".vtt"), (film.vtt + "\n").encode())
    join([(clip_path(folder, p.hash), p.duration_s) for p in film.plans], mp4)


def _write(path: Path, data: bytes) -> None:
    """``data`` written beside ``path`` then renamed into it (a reader never sees half)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_bytes(data)
    os.replace(partial, path)
