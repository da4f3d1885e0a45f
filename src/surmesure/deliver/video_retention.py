"""Retention of the video folder: films and clips are kept while they may be shown.

:func:`sweep` runs with the retention (:func:`surmesure.protect.retention.run_retention`):

- a film record (``video_films``) whose links have all expired goes: rendered more than
  ``SURMESURE_PAGE_LINK_MAX_DAYS`` ago, with no message of its campaign to its person sent
  since nor still to leave (a video link is made as its message leaves and lives that long),
  so its page no longer opens;
- a film (``<hash>.mp4``, ``.jpg``, ``.vtt``) no record names is removed, unless it was made
  or reused within :data:`FRESH` (a campaign records its films once a batch is made);
- a cached scene clip (``scenes/<hash>.mp4`` and its ``.jpg``: neutral scenes only) unused
  for ``retention_days["videos"]`` days is removed (0: kept for ever); a clip is used when a
  film is made from it, and is made again when a film needs it;
- what an interrupted render left (files being written, folders of personal clips, ffmpeg's
  scratch folders) older than :data:`FRESH` is removed.

A file's time is its last use: the renderer sets it to now when it reuses a film or a clip
(:mod:`surmesure.video.render`). Only names the renderer writes are touched; rows go in one
transaction, then files (a file already gone counts as removed by someone else, not here).
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from surmesure.config import Settings
from surmesure.store import schema
from surmesure.store.engine import Store

#: how long a film no record names, or a half-written file, is left to the render making it
FRESH = timedelta(days=1)
FILM_SUFFIXES = (".mp4", ".jpg", ".vtt")
CLIP_SUFFIXES = (".mp4", ".jpg")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_LEFTOVER = re.compile(r"^(\.|tmp)")


@dataclass
class Swept:
    """What a sweep removed (or, dry, would remove)."""

    rows: int = 0
    """``video_films`` records whose links have expired."""
    films: int = 0
    """Films (each up to three files) no record names."""
    clips: int = 0
    """Cached scene clips unused for the retention's days."""
    leftovers: int = 0
    """Files and folders an interrupted render left."""


def expired(now: datetime, settings: Settings) -> sa.ColumnElement[bool]:
    """The ``video_films`` records whose links have all expired at ``now`` (see the module)."""
    f, m = schema.video_films, schema.messages
    cutoff = now - timedelta(days=settings.page_link_max_days)
    live = (
        sa.select(m.c.message_id)
        .where(
            m.c.campaign == f.c.campaign,
            m.c.person_id == f.c.person_id,
            sa.or_(m.c.sent_at >= cutoff, m.c.status.in_(("planned", "sending"))),
        )
        .exists()
    )
    return sa.and_(f.c.rendered_at < cutoff, sa.not_(live))


def sweep(store: Store, *, days: int, now: datetime, dry_run: bool = False) -> Swept:
    """Remove from the store and ``SURMESURE_VIDEO_DIR`` what is no longer shown (see the
    module); ``days``: how long an unused clip is kept (0: for ever); ``now`` naive UTC."""
    settings = store.settings
    f = schema.video_films
    old = expired(now, settings)
    result = Swept()
    with store.begin() as conn:
        result.rows = int(
            conn.execute(sa.select(sa.func.count()).select_from(f).where(old)).scalar_one()
        )
        if result.rows and not dry_run:
            conn.execute(f.delete().where(old))
        named = set(
            conn.execute(sa.select(f.c.content_hash).where(sa.not_(old)).distinct()).scalars()
        )
    folder = Path(settings.video_dir)
    if not folder.is_dir():
        return result
    at = now.replace(tzinfo=UTC).timestamp()
    fresh = at - FRESH.total_seconds()
    films = {h: p for h, p in _by_hash(folder, FILM_SUFFIXES).items() if h not in named}
    result.films = _remove(films, fresh, dry_run)
    if days > 0:
        clips = _by_hash(folder / "scenes", CLIP_SUFFIXES)
        result.clips = _remove(clips, at - days * 86_400, dry_run)
    result.leftovers = sum(_leftovers(d, fresh, dry_run) for d in (folder, folder / "scenes"))
    return result


def _by_hash(folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = defaultdict(list)
    if folder.is_dir():
        for path in folder.iterdir():
            if path.suffix in suffixes and _HASH.match(path.stem) and path.is_file():
                found[path.stem].append(path)
    return found


def _remove(groups: dict[str, list[Path]], before: float, dry_run: bool) -> int:
    """Remove each group of files whose newest is older than ``before``; how many groups."""
    count = 0
    for paths in groups.values():
        times = [t for t in map(_mtime, paths) if t is not None]
        if not times or max(times) >= before:
            continue
        count += 1
        if not dry_run:
            for path in paths:
                path.unlink(missing_ok=True)
    return count


def _leftovers(folder: Path, before: float, dry_run: bool) -> int:
    count = 0
    if not folder.is_dir():
        return 0
    for path in folder.iterdir():
        when = _mtime(path)
        if not _LEFTOVER.match(path.name) or when is None or when >= before:
            continue
        count += 1
        if dry_run:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return count


def _mtime(path: Path) -> float | None:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return None
