"""Clips and films with ffmpeg (H.264 yuv420p, AAC) and voice-overs with espeak-ng.

A scene's clip is its still picture held for its frames, faded in and out by ffmpeg's
``fade``, with its voice-over (espeak-ng's WAV, sped up with ``atempo`` when it would not fit,
up to twice as fast; then cut) padded with silence to the scene's length. Every clip of a film
shares the codecs, the frame rate, the time base (``fps × 512``) and the audio format (48 kHz
mono AAC, with ffmpeg's fast coder: speech needs no more), so that a film is its clips joined
by ffmpeg's concat demuxer with ``-c copy``: nothing is encoded twice. Each clip's length is
written in the concat list (its frames over the frame rate), so the film's timeline is the sum
of its scenes' even though an AAC stream ends on a whole 1,024-sample frame. Files are written
beside their place and renamed into it, so a reader (or another process making the same file)
never sees half a file. Each ffmpeg runs on one thread: clips are made side by side (one per
worker), and one thread each spends less processor time than several.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from PIL import Image

from surmesure.errors import SurmesureError

SAMPLE_RATE = 48_000
#: the most a voice-over is sped up to fit its scene
MAX_TEMPO = 2.0
#: seconds of silence left at a scene's end when its voice-over is sped up
TAIL_S = 0.2


class VideoToolError(SurmesureError):
    """ffmpeg or espeak-ng failed, or is not installed."""

    code = "video_tool"


def run(args: Sequence[str], stdin: bytes | None = None) -> bytes:
    """Run a tool; :class:`VideoToolError` with its last words when it fails."""
    try:
        done = subprocess.run(list(args), input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise VideoToolError(
            f"{args[0]} is not installed.",
            hint="run `make system` (it installs ffmpeg, espeak-ng and the DejaVu fonts)",
        ) from exc
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-600:]
        raise VideoToolError(f"{args[0]} failed ({done.returncode}): {tail}")
    return done.stdout


def speak(text: str, voice: str, into: Path) -> float:
    """``text`` read by espeak-ng in ``voice`` into the WAV file ``into``; its seconds. The
    text goes through standard input, so nothing in it is read as an option or markup."""
    run(["espeak-ng", "-v", voice, "-b", "1", "-w", str(into)], stdin=text.encode())
    with wave.open(str(into), "rb") as sound:
        return sound.getnframes() / sound.getframerate()


def make_clip(
    spec: dict[str, Any], picture: Image.Image, into: Path, after: Image.Image | None = None
) -> None:
    """The clip of the scene ``spec`` (see :mod:`surmesure.video.plan`) showing ``picture``,
    written to ``into`` (an ``.mp4``) and its first frame to ``into``'s ``.jpg``; ``after``:
    the next scene's picture, which the last ``spec["crossfade"]`` seconds dissolve into."""
    width, height = spec["size"]
    fps, frames = spec["fps"], spec["frames"]
    seconds = frames / fps
    fade_in, fade_out = spec["fade"]
    background = spec["background"]
    with tempfile.TemporaryDirectory(dir=into.parent) as scratch:
        args = ["ffmpeg", "-v", "error", "-nostdin", "-y"]
        over_clip = background["kind"] == "picture" and background["clip"]
        if over_clip:
            args += ["-stream_loop", "-1", "-i", background["path"]]
        pixel = "rgba" if picture.mode == "RGBA" else "rgb24"
        args += ["-f", "rawvideo", "-pix_fmt", pixel, "-s", f"{width}x{height}",
                 "-framerate", str(fps), "-i", "pipe:0"]  # fmt: skip
        frames_in = picture.tobytes()
        if after is not None:
            next_picture = Path(scratch) / "next.rgb"
            next_picture.write_bytes(after.convert("RGB").tobytes())
            args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                     "-framerate", str(fps), "-i", str(next_picture)]  # fmt: skip
        tempo = 1.0
        if spec["say"]:
            wav = Path(scratch) / "say.wav"
            said = speak(spec["say"], spec["voice"], wav)
            room = max(0.1, seconds - TAIL_S)
            tempo = min(MAX_TEMPO, said / room) if said > room else 1.0
            args += ["-i", str(wav)]
        else:
            args += ["-f", "lavfi", "-i", f"anullsrc=r={SAMPLE_RATE}:cl=mono"]
        fades = ""
        if fade_in:
            fades += f",fade=t=in:st=0:d={fade_in}"
        if fade_out and after is None:
            fades += f",fade=t=out:st={max(0.0, seconds - fade_out):.4f}:d={fade_out}"
        if over_clip:
            video = (
                f"[0:v]scale={width}:{height}:force_original_aspect_ratio=increase,"
                f"crop={width}:{height},fps={fps},setsar=1[bg];[bg][1:v]overlay=format=auto,"
                f"format=yuv420p,trim=end_frame={frames},setpts=PTS-STARTPTS{fades}[v]"
            )
            audio_input = 2
        elif after is not None:
            blend = max(1, min(frames - 1, round(spec["crossfade"] * fps)))
            video = (
                f"[0:v]format=yuv420p,tpad=stop_mode=clone:stop={frames - 1}{fades}[a];"
                f"[1:v]format=yuv420p,tpad=stop_mode=clone:stop={blend - 1}[b];"
                f"[a][b]xfade=transition=fade:duration={blend / fps:.6f}:"
                f"offset={(frames - blend) / fps:.6f}[v]"
            )
            audio_input = 2
        else:
            video = f"[0:v]format=yuv420p,tpad=stop_mode=clone:stop={frames - 1}{fades}[v]"
            audio_input = 1
        speed = f"atempo={tempo:.4f}," if tempo > 1.0 else ""
        samples = round(seconds * SAMPLE_RATE)
        audio = (
            f"[{audio_input}:a]aresample={SAMPLE_RATE},{speed}apad,atrim=end_sample={samples}[a]"
        )
        partial = Path(scratch) / "clip.mp4"
        args += [
            "-filter_complex", f"{video};{audio}", "-filter_complex_threads", "1",
            "-map", "[v]", "-map", "[a]", "-threads", "1",
            "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast",
            "-tune", "stillimage", "-pix_fmt", "yuv420p", "-r", str(fps),
            "-video_track_timescale", str(fps * 512),
            "-c:a", "aac", "-aac_coder", "fast", "-b:a", "64k", "-ac", "1", "-ar", str(SAMPLE_RATE),
            str(partial),
        ]  # fmt: skip
        run(args, stdin=frames_in)
        poster = Path(scratch) / "poster.jpg"
        if over_clip:
            run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", f"{fade_in:.3f}",
                 "-i", str(partial), "-frames:v", "1", "-q:v", "3", str(poster)])  # fmt: skip
        else:
            picture.convert("RGB").save(poster, "JPEG", quality=85)
        os.replace(poster, into.with_suffix(".jpg"))
        os.replace(partial, into)


def join(clips: Sequence[tuple[Path, float]], into: Path) -> None:
    """The film of ``clips`` (each a path and its length in seconds), in order, joined without
    encoding again, with its index at the front (``+faststart``) for playing while loading."""
    lines = ["ffconcat version 1.0"]
    for path, seconds in clips:
        quoted = str(path.resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {seconds:.6f}"]
    with tempfile.TemporaryDirectory(dir=into.parent) as scratch:
        listing = Path(scratch) / "list.ffconcat"
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        partial = Path(scratch) / "film.mp4"
        run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0", "-i",
             str(listing), "-c", "copy", "-movflags", "+faststart", str(partial)])  # fmt: skip
        os.replace(partial, into)


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's account of the file at ``path``: its ``format`` and ``streams``."""
    out = run(["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams",
               str(path)])  # fmt: skip
    found: dict[str, Any] = orjson.loads(out)
    return found
