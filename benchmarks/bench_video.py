"""What personalized films cost: one 20-second 720p film, and a campaign of films.

On the demo world (``surmesure demo --customers N``, built in a temporary folder unless
``--url`` names a store), with the shipped template ``year_in_review`` (5 scenes, 20 s,
1280x720, 25 fps):

1. one person's film: the first in the process (the recommender's model is built then), with
   no scene cache; another person's with no scene cache; the same person again (the film is
   there); a third person's with the scene cache of the two before (the scenes they share are
   reused);
2. a campaign of ``--films`` people (those with the most orders first) through
   ``render_many``, beside a plain ffmpeg encode of the same scenes on a sample of
   ``--sample`` of them: one ffmpeg call per film taking each scene's still picture and voice
   (drawn and spoken as the campaign does) into one MP4, with no clip reused;
3. the price of privacy: a campaign of ``--privacy-films`` people rendered with the personal
   scene clips made beside their films and removed (as ``render_many`` does), and again with
   them kept in the shared scene cache as the neutral ones are (as it did before), each on an
   empty video folder, the two ways taking turns over ``--rounds`` rounds: processor seconds
   per film of each, and their ratio.

Times are wall and processor time, the children's (ffmpeg, espeak-ng) included: on a shared
machine the processor time is the steadier figure. The ratio is films per processor second of
the campaign over the plain encode's.

    python benchmarks/bench_video.py [--films 1000] [--sample 20] [--customers 2000]
        [--privacy-films 100] [--rounds 2] [--url duckdb:///...] [--json]

``--films 0`` or ``--privacy-films 0`` leaves that part out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from cputime import timed
from surmesure.clock import utcnow
from surmesure.config import Settings, get_settings
from surmesure.store import Store, open_store
from surmesure.video import load_template, render, render_many, render_person
from surmesure.video.draw import draw_scene
from surmesure.video.encode import SAMPLE_RATE, probe, speak
from surmesure.video.people import read_viewers
from surmesure.video.plan import CompiledVideo

EXAMPLE = Path(__file__).resolve().parents[1] / "src/surmesure/video/examples/year_in_review.yaml"


def demo_store(folder: Path, customers: int) -> str:
    url = f"duckdb:///{folder / 'store.duckdb'}"
    command = [sys.executable, "-m", "surmesure.cli.main", "demo", "--customers",
               str(customers), "--out", str(folder / "world"), "--json"]  # fmt: skip
    env = {**os.environ, "SURMESURE_DATABASE_URL": url}
    subprocess.run(command, env=env, check=True, capture_output=True)
    return url


def buyers(store: Store, count: int) -> list[int]:
    """``count`` people, those with the most orders first."""
    sql = (
        "SELECT o.person_id FROM orders o JOIN people p ON p.person_id = o.person_id "
        "WHERE p.merged_into IS NULL GROUP BY o.person_id ORDER BY count(*) DESC, o.person_id "
        "LIMIT :n"
    )
    with store.connect() as conn:
        return [int(p) for p in conn.execute(sa.text(sql), {"n": count}).scalars()]


def plain_film(compiled: CompiledVideo, plans: list[Any], folder: Path) -> Path:
    """The film of ``plans`` in one ffmpeg call: each scene's picture held, faded, its voice
    padded, all joined by the concat filter; nothing cached."""
    args = ["ffmpeg", "-v", "error", "-nostdin", "-y"]
    parts = []
    for i, plan in enumerate(plans):
        spec = plan.spec
        picture = folder / f"s{i}.png"
        draw_scene(spec).save(picture, compress_level=1)
        seconds = plan.duration_s
        args += ["-loop", "1", "-framerate", str(spec["fps"]), "-t", f"{seconds}", "-i",
                 str(picture)]  # fmt: skip
        if spec["say"]:
            speak(spec["say"], spec["voice"], folder / f"s{i}.wav")
            args += ["-i", str(folder / f"s{i}.wav")]
        else:
            args += ["-f", "lavfi", "-t", f"{seconds}", "-i", f"anullsrc=r={SAMPLE_RATE}"]
        fade_in, fade_out = spec["fade"]
        parts.append(
            f"[{2 * i}:v]format=yuv420p,fade=t=in:st=0:d={fade_in},"
            f"fade=t=out:st={seconds - fade_out}:d={fade_out}[v{i}];"
            f"[{2 * i + 1}:a]aresample={SAMPLE_RATE},apad,atrim=duration={seconds}[a{i}]"
        )
    joined = "".join(f"[v{i}][a{i}]" for i in range(len(plans)))
    graph = ";".join(parts) + f";{joined}concat=n={len(plans)}:v=1:a=1[v][a]"
    out = folder / "plain.mp4"
    args += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264",
             "-preset", "ultrafast", "-tune", "stillimage", "-pix_fmt", "yuv420p", "-c:a", "aac",
             "-b:a", "64k", "-ac", "1", "-movflags", "+faststart", str(out)]  # fmt: skip
    subprocess.run(args, check=True)
    return out


def one_film(store: Store, settings: Settings, people: list[int]) -> dict[str, Any]:
    template = load_template(EXAMPLE)
    out: dict[str, Any] = {}

    def film(key: str, person: int) -> None:
        made, wall, used = timed(lambda: render_person(store, template, person, settings=settings))
        duration = float(probe(made.mp4)["format"]["duration"])
        out[key] = {"wall_s": wall, "cpu_s": used, "film_s": duration,
                    "reused_scenes": made.reused_scenes}  # fmt: skip

    film("first in process, no scene cache", people[0])
    shutil.rmtree(settings.video_dir)
    film("no scene cache", people[1])
    film("same person again", people[1])
    film("another person, scene cache warm", people[2])
    return out


def campaign(store: Store, settings: Settings, people: list[int], sample: int) -> dict[str, Any]:
    template = load_template(EXAMPLE)
    shutil.rmtree(settings.video_dir, ignore_errors=True)
    films, wall, used = timed(lambda: render_many(store, template, people, settings=settings))
    compiled = CompiledVideo(template, settings.video_pictures_dir)
    now = utcnow()
    viewers = read_viewers(store, template, people[:sample], now)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)

        def plain() -> None:
            for viewer in viewers:
                plain_film(compiled, compiled.plans(viewer, now), folder)

        _, plain_wall, plain_cpu = timed(plain)
    ours = {"films": len(films), "distinct": len({f.content_hash for f in films}),
            "wall_s": wall, "cpu_s": used, "films_per_s": len(films) / wall,
            "films_per_cpu_s": len(films) / used}  # fmt: skip
    theirs = {"films": len(viewers), "wall_s": plain_wall, "cpu_s": plain_cpu,
              "films_per_s": len(viewers) / plain_wall,
              "films_per_cpu_s": len(viewers) / plain_cpu}  # fmt: skip
    clips = len(list((settings.video_dir / "scenes").glob("*.mp4")))
    return {"render_many": ours, "plain_ffmpeg": theirs, "scene_clips": clips,
            "ratio_cpu": ours["films_per_cpu_s"] / theirs["films_per_cpu_s"],
            "ratio_wall": ours["films_per_s"] / theirs["films_per_s"]}  # fmt: skip


def privacy(store: Store, settings: Settings, people: list[int], rounds: int) -> dict[str, Any]:
    """Processor seconds per film with personal clips removed after their films (``removed``)
    and kept in the scene cache (``cached``, the way before), taking turns."""
    template = load_template(EXAMPLE)
    ways: dict[str, Callable[[Any], bool]] = {
        "removed": render.cached,
        "cached": lambda plan: True,
    }
    spent = {way: [0.0, 0.0] for way in ways}
    clips = {way: 0 for way in ways}
    now = utcnow()
    try:
        for turn in range(rounds):
            for way in ways if turn % 2 == 0 else reversed(ways):
                shutil.rmtree(settings.video_dir, ignore_errors=True)
                render.cached = ways[way]  # type: ignore[assignment]
                _, wall, used = timed(
                    lambda: render_many(store, template, people, settings=settings, now=now)
                )
                spent[way][0] += wall
                spent[way][1] += used
                clips[way] = len(list((settings.video_dir / "scenes").glob("*.mp4")))
    finally:
        render.cached = ways["removed"]  # type: ignore[assignment]
    films = len(people) * rounds
    out: dict[str, Any] = {
        way: {"cpu_s_per_film": spent[way][1] / films, "wall_s_per_film": spent[way][0] / films,
              "cached_clips": clips[way]}
        for way in ways
    }  # fmt: skip
    out["ratio_cpu"] = out["removed"]["cpu_s_per_film"] / out["cached"]["cpu_s_per_film"]
    out["ratio_wall"] = out["removed"]["wall_s_per_film"] / out["cached"]["wall_s_per_film"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--films", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--privacy-films", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-video-") as scratch:
        folder = Path(scratch)
        url = args.url or demo_store(folder, args.customers)
        store = open_store(url)
        settings = get_settings().model_copy(update={"video_dir": folder / "videos"})
        people = buyers(store, max(args.films, args.privacy_films, 3))
        single = one_film(store, settings, people[:3])
        many = (
            campaign(store, settings, people[: args.films], min(args.sample, args.films))
            if args.films > 0
            else None
        )
        kept = (
            privacy(store, settings, people[: args.privacy_films], args.rounds)
            if args.privacy_films > 0
            else None
        )
        store.dispose()
    result = {"load_average": os.getloadavg(), "at": datetime.now().isoformat(),
              "one_film": single, "campaign": many, "privacy": kept}  # fmt: skip
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console = Console()
    table = Table(title="one 20 s 720p film (year_in_review)")
    for column in ("case", "wall s", "cpu s", "film s", "reused scenes"):
        table.add_column(column)
    for case, row in single.items():
        table.add_row(case, f"{row['wall_s']:.2f}", f"{row['cpu_s']:.2f}",
                      f"{row['film_s']:.2f}", str(row["reused_scenes"]))  # fmt: skip
    console.print(table)
    if many is not None:
        print_campaign(console, many, args.films, result["load_average"])
    if kept is not None:
        print_privacy(console, kept, args.privacy_films)


def print_campaign(console: Console, many: dict[str, Any], films: int, load: Any) -> None:
    table = Table(title=f"campaign of {films} films")
    for column in ("way", "films", "wall s", "cpu s", "films/s", "films/cpu s"):
        table.add_column(column)
    for way in ("render_many", "plain_ffmpeg"):
        row = many[way]
        table.add_row(way, str(row["films"]), f"{row['wall_s']:.1f}", f"{row['cpu_s']:.1f}",
                      f"{row['films_per_s']:.2f}", f"{row['films_per_cpu_s']:.2f}")  # fmt: skip
    console.print(table)
    console.print(
        f"render_many: {many['render_many']['distinct']} distinct films from "
        f"{many['scene_clips']} scene clips; {many['ratio_cpu']:.1f}x the plain encode's films "
        f"per cpu second ({many['ratio_wall']:.1f}x per wall second); load average "
        f"{', '.join(f'{x:.1f}' for x in load)}"
    )


def print_privacy(console: Console, kept: dict[str, Any], films: int) -> None:
    table = Table(title=f"personal clips, campaign of {films} films")
    for column in ("personal clips", "cpu s / film", "wall s / film", "clips cached"):
        table.add_column(column)
    for way in ("cached", "removed"):
        row = kept[way]
        table.add_row(way, f"{row['cpu_s_per_film']:.3f}", f"{row['wall_s_per_film']:.3f}",
                      str(row["cached_clips"]))  # fmt: skip
    console.print(table)
    console.print(
        f"removed after their films: {kept['ratio_cpu']:.2f}x the processor time per film of "
        f"keeping them cached ({kept['ratio_wall']:.2f}x the wall time)"
    )


if __name__ == "__main__":
    main()
