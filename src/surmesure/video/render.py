"""Personalized films: one per person, made from scene clips shared by content.

A film is planned scene by scene for its person (:mod:`surmesure.video.plan`); each scene's
plan hash names its clip (drawn, spoken, encoded: :mod:`surmesure.video.draw`,
:mod:`surmesure.video.encode`). A clip that shows nothing of anybody (a neutral scene) is kept
in the shared scene cache, ``<video_dir>/scenes/<hash>.mp4``, made once and reused by every
film that shows the same scene. A personal clip (see :class:`~surmesure.video.plan.ScenePlan`)
is made in a folder of its own for a batch of films (:data:`BATCH`; the same store or the same
products recur among them), and removed once they are joined: no clip holding a person's data
outlives the batch of their film, which erasure removes. The film's
hash (of its scenes' hashes and its subtitles) names the film: ``<video_dir>/<hash>.mp4`` (its
clips joined without encoding again), ``.jpg`` (its poster: the first scene's picture) and
``.vtt`` (WebVTT subtitles, one cue per scene). So the neutral film, the one for anybody
unknown, opted out of personalization or whose data is not reliable, is made once for all of
them. No name in the folder comes from anything but a content hash.

Every file is written beside its place and renamed into it, the film's ``.mp4`` last: two
processes making the same film or clip each write whole files, the last rename wins, and a
reader never sees half of one. A film or cached clip found there and reused has its time set
to now: the retention (:mod:`surmesure.deliver.video_retention`) removes only those unused for
long.

A film is ``neutral`` when none of its scenes shows the person's own data (no field used, no
chart of their orders, no recommendation of their own, no store of theirs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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
            with _personal(folder) as personal:
                for first in range(0, len(planned), step):
                    chunk = planned[first : first + step]
                    made = _make_scenes(pool, folder, personal, chunk)
                    films += _make_films(pool, folder, personal, chunk, made)
                    if on_progress is not None:
                        on_progress(len(films), total)
    return films


def films_of(plans: Sequence[list[ScenePlan]], folder: Path, workers: int = 1) -> list[Film]:
    """The film of each list of scene plans, made in ``folder`` unless already there."""
    (folder / "scenes").mkdir(parents=True, exist_ok=True)
    planned = [_planned(p) for p in plans]
    with ThreadPoolExecutor(max_workers=workers) as pool, _personal(folder) as personal:
        made = _make_scenes(pool, folder, personal, planned)
        return _make_films(pool, folder, personal, planned, made)


def cached(plan: ScenePlan) -> bool:
    """Whether ``plan``'s clip may be kept in the shared scene cache: it shows and says
    nothing of the person's own."""
    return not plan.personal


@contextmanager
def _personal(folder: Path) -> Iterator[Path]:
    """A folder for the personal clips of a batch's films, removed with them once the films
    are joined (also when making them fails)."""
    personal = Path(tempfile.mkdtemp(prefix=PERSONAL_PREFIX, dir=folder))
    try:
        yield personal
    finally:
        shutil.rmtree(personal, ignore_errors=True)


def _planned(plans: list[ScenePlan]) -> _Planned:
    vtt = subtitles(plans)
    return _Planned(plans, vtt, plan_hash({"scenes": [p.hash for p in plans], "vtt": vtt}))


#: how the folder of a group of films' personal clips starts (inside the video folder)
PERSONAL_PREFIX = ".personal-"


def clip_path(folder: Path, scene_hash: str) -> Path:
    """The cached clip ``scene_hash`` (a neutral scene's)."""
    return folder / "scenes" / f"{scene_hash}.mp4"


def _clip_of(folder: Path, personal: Path, plan: ScenePlan) -> Path:
    return clip_path(folder, plan.hash) if cached(plan) else personal / f"{plan.hash}.mp4"


def used(path: Path) -> bool:
    """Whether ``path`` is there, its time then set to now (it is in use); a file removed
    meanwhile is not there."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _make_scenes(
    pool: ThreadPoolExecutor, folder: Path, personal: Path, planned: list[_Planned]
) -> set[str]:
    """Make the clips the films of ``planned`` lack (whose film is not already there): the
    neutral ones into the scene cache, the personal ones into ``personal``; the hashes of
    those made."""
    wanted: dict[Path, ScenePlan] = {}  # by place: a scene may be one person's, another's not
    for film in planned:
        if used(folder / f"{film.hash}.mp4"):
            continue
        for plan in film.plans:
            clip = _clip_of(folder, personal, plan)
            if clip not in wanted and not used(clip):
                wanted[clip] = plan
    for _ in pool.map(lambda item: _make_clip(*item), wanted.items()):
        pass
    return {plan.hash for plan in wanted.values()}


def _make_clip(into: Path, plan: ScenePlan) -> None:
    after = plan.spec.get("into")
    make_clip(plan.spec, draw_scene(plan.spec), into, None if after is None else draw_scene(after))


def _make_films(
    pool: ThreadPoolExecutor, folder: Path, personal: Path, planned: list[_Planned], made: set[str]
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
    for _ in pool.map(lambda f: _join(folder, personal, f), todo.values()):
        pass
    return films


def _join(folder: Path, personal: Path, film: _Planned) -> None:
    mp4 = folder / f"{film.hash}.mp4"
    clips = [_clip_of(folder, personal, p) for p in film.plans]
    _write(mp4.with_suffix(".jpg"), clips[0].with_suffix(".jpg").read_bytes())
    _write(mp4.with_suffix(".vtt"), (film.vtt + "\n").encode())
    join([(c, p.duration_s) for c, p in zip(clips, film.plans, strict=True)], mp4)


def _write(path: Path, data: bytes) -> None:
    """``data`` written beside ``path`` then renamed into it (a reader never sees half)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_bytes(data)
    os.replace(partial, path)
