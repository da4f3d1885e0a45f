"""``surmesure video render TEMPLATE``: a person's personalized film, or a batch of them.

One person (``--person REF``, or ``--neutral`` for the film of nobody known) writes the film
to ``--out`` (``film.mp4``) with its poster (``film.jpg``) and subtitles (``film.vtt``) beside
it. A batch (``--segment NAME`` or ``--people FILE``) writes ``<person_id>.mp4``, ``.jpg`` and
``.vtt`` into ``--out-dir``, with a progress bar. Films are made in (and reused from)
``SURMESURE_VIDEO_DIR``; the written files are copies. A personal film no campaign records is
removed from that folder once copied (:func:`surmesure.deliver.video.forget`): nothing there
holds a person's data that erasure would not find; a batch is made and copied
:data:`~surmesure.deliver.video.BATCH` films at a time.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import typer

from surmesure.cli.common import JsonOption, console, emit_json, get_store, progress, user_errors
from surmesure.cli.experiments_store import read_people
from surmesure.config import get_settings
from surmesure.deliver.plan import MEMBERS
from surmesure.deliver.video import BATCH, forget
from surmesure.errors import InvalidInput
from surmesure.protect import audit
from surmesure.unify.profile import find_person
from surmesure.video import Film, load_template, render_many, render_person

PERSON_HELP = "A person id, or kind:value (e.g. customer_id:C42)."


def copy_film(film: Film, mp4: Path) -> None:
    mp4.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(film.mp4, mp4)
    shutil.copyfile(film.poster, mp4.with_suffix(".jpg"))
    shutil.copyfile(film.subtitles, mp4.with_suffix(".vtt"))


def _summary(film: Film, out: Path, seconds: float) -> dict[str, Any]:
    return {
        "out": str(out),
        "poster": str(out.with_suffix(".jpg")),
        "subtitles": str(out.with_suffix(".vtt")),
        "content_hash": film.content_hash,
        "duration_s": film.duration_s,
        "neutral": film.neutral,
        "scenes": film.scenes,
        "reused_scenes": film.reused_scenes,
        "seconds": round(seconds, 3),
    }


def _batch_ids(segment: str | None, people: Path | None) -> list[int]:
    if people is not None:
        return read_people(people)
    store = get_store()
    try:
        with store.connect() as conn:
            return [int(p) for p in conn.execute(sa.text(MEMBERS), {"segment": segment}).scalars()]
    finally:
        store.dispose()


def render_command(
    template: Path = typer.Argument(..., help="The video template (YAML or JSON file)."),
    person: str | None = typer.Option(None, "--person", help=PERSON_HELP),
    neutral: bool = typer.Option(False, "--neutral", help="The neutral film (nobody known)."),
    out: Path | None = typer.Option(None, "--out", help="The film to write (.mp4)."),
    segment: str | None = typer.Option(None, "--segment", help="A film for each member."),
    people: Path | None = typer.Option(
        None, "--people", help="A film for each person id of this file (first column)."
    ),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Folder of a batch's films."),
    as_json: bool = JsonOption,
) -> None:
    """Render a personalized film for one person (--person or --neutral, --out) or a batch
    (--segment or --people, --out-dir)."""
    single = person is not None or neutral
    batch = segment is not None or people is not None
    if single == batch or (person is not None and neutral) or (segment and people):
        raise InvalidInput(
            "Say whom the film is for: one of --person, --neutral, --segment or --people.",
            field="person",
            hint="e.g. `surmesure video render year.yaml --person 42 --out film.mp4`",
        )
    if single and out is None:
        raise InvalidInput("--out is missing.", field="out", hint="e.g. --out film.mp4")
    if batch and out_dir is None:
        raise InvalidInput("--out-dir is missing.", field="out_dir", hint="e.g. --out-dir films")
    definition = load_template(template)
    settings = get_settings()
    started = time.perf_counter()
    if single:
        assert out is not None
        store = get_store()
        try:
            person_id = None
            if person is not None:
                with store.connect() as conn:
                    person_id = find_person(conn, person).person_id
            film = render_person(store, definition, person_id, settings=settings)
            copy_film(film, out)
            forget(store, [film], settings)
            if person_id is not None:
                audit.record(store, audit.cli_actor(), "video.render", person_id=person_id,
                             detail={"template": definition.name})  # fmt: skip
        finally:
            store.dispose()
        summary = _summary(film, out, time.perf_counter() - started)
        if as_json:
            emit_json(summary)
            return
        kind = "neutral" if film.neutral else "personal"
        console.print(
            f"{out}: {film.duration_s:.2f} s, {kind}, {film.scenes} scenes "
            f"({film.reused_scenes} reused), made in {summary['seconds']:.2f} s"
        )
        return
    assert out_dir is not None
    ids = _batch_ids(segment, people)
    store = get_store()
    films: list[Film] = []
    try:
        with progress(quiet=as_json) as bar:
            task = bar.add_task("films", total=len(ids))
            for start in range(0, len(ids), BATCH):
                part = ids[start : start + BATCH]

                def moved(done: int, _total: int, before: int = start) -> None:
                    bar.update(task, completed=before + done)

                made = render_many(store, definition, part, settings=settings, on_progress=moved)
                for person_id, film in zip(part, made, strict=True):
                    copy_film(film, out_dir / f"{person_id}.mp4")
                forget(store, made, settings)
                films += made
        audit.record(store, audit.cli_actor(), "video.render", detail={
            "template": definition.name, "people": len(ids)})  # fmt: skip
    finally:
        store.dispose()
    seconds = time.perf_counter() - started
    distinct = len({f.content_hash for f in films})
    neutral_count = sum(f.neutral for f in films)
    if as_json:
        emit_json({"films": len(films), "distinct": distinct, "neutral": neutral_count,
                   "out_dir": str(out_dir), "seconds": round(seconds, 3)})  # fmt: skip
        return
    console.print(
        f"{len(films)} films in {out_dir} ({distinct} distinct, {neutral_count} neutral), "
        f"made in {seconds:.2f} s"
    )


def register(app: typer.Typer) -> None:
    video_app = typer.Typer(help="Personalized videos.", no_args_is_help=True)
    video_app.command("render")(user_errors(render_command))
    app.add_typer(video_app, name="video")
