"""Each scene of a person's film as a plan: everything that shapes its clip, resolved.

A plan is plain data (texts already rendered, numbers, colours, the digests of the pictures it
draws), so that its hash (:func:`plan_hash`) names the clip: two people whose scene would look
and sound the same share one clip, and the neutral scenes are made once for everyone.

Texts render in the decisions' sandbox, in text mode (:mod:`surmesure.decide.sandbox`): a
value is printed as written, never read as a template, so a first name ``{{ 7*7 }}`` is drawn
as those characters. What is drawn is bounded (:data:`MAX_DRAWN` characters per text, then
``…``), and so is what is said (:data:`MAX_SAID`); control characters are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, assert_never

import orjson
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import Template as JinjaTemplate
from jinja2 import meta

from surmesure.decide.sandbox import TEXT, compile_text, render_text
from surmesure.errors import InvalidInput
from surmesure.video.people import Viewer
from surmesure.video.template import (
    ChartScene,
    Overlay,
    Picture,
    ProductsScene,
    Scene,
    StoreScene,
    TitleScene,
    VideoTemplate,
)

#: bumped when drawing or encoding changes, so that clips made before are not reused
VERSION = 1
#: the most characters a drawn text keeps
MAX_DRAWN = 300
#: the most characters a scene's voice-over (and subtitle) keeps
MAX_SAID = 600
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SAFE_CODE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
#: what of a scene's plan its picture does not show
_NOT_DRAWN = frozenset({"say", "voice", "fade", "frames", "crossfade", "into"})
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CLIP_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv")


def bounded(text: str, limit: int) -> str:
    """``text`` without control characters, cut at ``limit`` characters (then ``…``)."""
    clean = _CONTROL.sub("", text).strip()
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class ScenePlan:
    """One scene, resolved: ``spec`` is everything that shapes its clip (hashed), ``say`` its
    voice-over and subtitle text, ``personal`` whether its clip shows or says the person's own
    data: its kind's (their chart, their own recommendations, their store), a field its texts
    read when any field holds the person's own value, or, for a scene that crossfades, the
    next scene's. A personal clip is never kept in the shared scene cache
    (:mod:`surmesure.video.render`)."""

    spec: dict[str, Any]
    say: str
    personal: bool
    frames: int
    fps: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    @property
    def hash(self) -> str:
        return plan_hash(self.spec)


def plan_hash(spec: dict[str, Any]) -> str:
    """The hex SHA-256 of ``spec`` written as sorted JSON."""
    return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()


class CompiledVideo:
    """A template with every text compiled once, planned for many people."""

    def __init__(self, template: VideoTemplate, pictures_dir: Path | None = None) -> None:
        self.template = template
        self.pictures_dir = pictures_dir
        self.texts: list[dict[str, JinjaTemplate]] = []
        #: whether any text of each scene reads ``person`` (a field, maybe the person's own)
        self.reads_person: list[bool] = []
        for i, scene in enumerate(template.scenes):
            sources: dict[str, str] = {"say": scene.say}
            if isinstance(scene, TitleScene):
                sources.update({f"texts[{j}]": o.text for j, o in enumerate(scene.texts)})
            elif isinstance(scene, ChartScene):
                sources.update(title=scene.title, neutral_text=scene.neutral_text)
            elif isinstance(scene, ProductsScene):
                sources.update(title=scene.title)
            else:
                sources.update(title=scene.title, text=scene.text, neutral_text=scene.neutral_text)
            self.texts.append(
                {k: compile_text(v, f"{template.name}/scenes[{i}].{k}") for k, v in sources.items()}
            )
            self.reads_person.append(any(_reads_person(v) for v in sources.values()))

    def plans(self, viewer: Viewer, now: datetime) -> list[ScenePlan]:
        """The plan of each scene of ``viewer``'s film, in order. A scene that crossfades into
        the next holds the next one's picture (``into``): its clip changes with it."""
        plans = [self._plan(i, scene, viewer, now) for i, scene in enumerate(self.template.scenes)]
        for at, scene in enumerate(self.template.scenes):
            if scene.transition.crossfade:
                plan, after = plans[at], plans[at + 1].spec
                into = {k: v for k, v in after.items() if k not in _NOT_DRAWN}
                spec = {**plan.spec, "crossfade": scene.transition.crossfade, "into": into}
                personal = plan.personal or plans[at + 1].personal  # its last frames show it
                plans[at] = ScenePlan(spec, plan.say, personal, plan.frames, plan.fps)
        return plans

    def _plan(self, at: int, scene: Scene, viewer: Viewer, now: datetime) -> ScenePlan:
        t = self.template
        values: dict[str, Any] = {
            "person": viewer.fields, "locale": t.locale, "currency": t.currency, "now": now,
        }  # fmt: skip
        body: dict[str, Any]
        personal: bool
        match scene:
            case TitleScene():
                personal = False  # its own only through the fields its texts read (below)
                values["personal"] = viewer.fields_used
                body = {"texts": [self._overlay(at, j, o, values) for j, o in
                                  enumerate(scene.texts)]}  # fmt: skip
            case ChartScene():
                personal = viewer.spend is not None
                values["personal"] = personal
                body = self._chart(at, scene, viewer, values)
            case ProductsScene():
                personal = viewer.products_personal
                cards = [self._card(p) for p in viewer.products[: scene.count]]
                values.update(personal=personal, products=viewer.products[: scene.count])
                body = {"title": self._text(at, "title", values), "cards": cards}
            case StoreScene():
                personal = viewer.store is not None
                values.update(personal=personal, store=dict(viewer.store or {}))
                which = "text" if personal else "neutral_text"
                body = {"title": self._text(at, "title", values),
                        "text": self._text(at, which, values)}  # fmt: skip
            case _:
                assert_never(scene)
        personal = personal or (viewer.fields_used and self.reads_person[at])
        say = bounded(" ".join(self._render(at, "say", values).split()), MAX_SAID)
        frames = t.frames(scene)
        spec = {
            "version": VERSION,
            "kind": scene.kind,
            "size": [t.width, t.height],
            "fps": t.fps,
            "frames": frames,
            "background": self._background(scene),
            "fade": [scene.transition.fade_in, scene.transition.fade_out],
            "say": say,
            "voice": t.espeak_voice,
            **body,
        }
        return ScenePlan(spec, say, personal, frames, t.fps)

    def _render(self, at: int, key: str, values: dict[str, Any]) -> str:
        return render_text(self.texts[at][key], values, locale=self.template.locale)

    def _text(self, at: int, key: str, values: dict[str, Any]) -> str:
        return bounded(self._render(at, key, values), MAX_DRAWN)

    def _overlay(self, at: int, j: int, overlay: Overlay, values: dict[str, Any]) -> dict[str, Any]:
        return {
            **overlay.model_dump(mode="json"),
            "text": self._text(at, f"texts[{j}]", values),
        }

    def _chart(
        self, at: int, scene: ChartScene, viewer: Viewer, values: dict[str, Any]
    ) -> dict[str, Any]:
        if viewer.spend is None:
            return {"title": self._text(at, "title", values),
                    "text": self._text(at, "neutral_text", values)}  # fmt: skip
        spend = viewer.spend[-scene.months :]
        months = viewer.months[-scene.months :]
        labels = [format_date(m, "MMM", locale=self.template.locale) for m in months]
        values.update(
            total=round(sum(spend), 2),
            months=[{"month": m, "amount": a} for m, a in zip(months, spend, strict=True)],
        )
        return {"title": self._text(at, "title", values), "labels": labels, "values": list(spend)}

    def _card(self, product: dict[str, Any]) -> dict[str, Any]:
        t = self.template
        price = product.get("price")
        picture = self._picture_of(str(product.get("product_code") or ""))
        return {
            "name": bounded(str(product.get("name") or product.get("product_code") or ""), 80),
            "price": "" if price is None else format_currency(price, t.currency, locale=t.locale),
            "picture": None if picture is None else [str(picture), file_digest(picture)],
        }

    def _picture_of(self, code: str) -> Path | None:
        if self.pictures_dir is None or not _SAFE_CODE.match(code):
            return None
        for suffix in PICTURE_SUFFIXES:
            candidate = self.pictures_dir / f"{code}{suffix}"
            if candidate.is_file():
                return candidate
        return None

    def _background(self, scene: Scene) -> dict[str, Any]:
        background = scene.background
        if not isinstance(background, Picture):
            return background.model_dump(mode="json")
        path = picture_path(self.template, background.path)
        return {"kind": "picture", "path": str(path), "digest": file_digest(path),
                "clip": path.suffix.lower() in CLIP_SUFFIXES}  # fmt: skip


def _reads_person(source: str) -> bool:
    return "person" in meta.find_undeclared_variables(TEXT.parse(source))


def picture_path(template: VideoTemplate, given: str) -> Path:
    """The background file ``given`` names, inside the template's folder; :class:`InvalidInput`
    for a path outside it, a missing file or an unknown kind of file."""
    folder = (template.folder or Path.cwd()).resolve()
    path = (folder / given).resolve()
    if not path.is_relative_to(folder):
        raise InvalidInput(
            f"background path {given!r} leads outside the template's folder {folder}.",
            field="background.path",
            hint="put the picture or clip beside the template and name it relative to it",
        )
    if path.suffix.lower() not in PICTURE_SUFFIXES + CLIP_SUFFIXES:
        raise InvalidInput(
            f"background path {given!r} is neither a picture nor a clip.",
            field="background.path",
            hint=f"use a file ending in {', '.join(PICTURE_SUFFIXES + CLIP_SUFFIXES)}",
        )
    if not path.is_file():
        raise InvalidInput(
            f"background file {path} does not exist.",
            field="background.path",
            hint="check the path, relative to the template's folder",
        )
    return path


def file_digest(path: Path) -> str:
    """The SHA-256 of the file at ``path`` (remembered while its size and time are the same)."""
    stat = path.stat()
    return _digest(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4096)
def _digest(path: str, _size: int, _mtime_ns: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def subtitles(plans: Sequence[ScenePlan]) -> str:
    """The WebVTT of ``plans``: one cue per scene that says something, over its time."""
    lines = ["WEBVTT", ""]
    start = 0.0
    for n, plan in enumerate(plans, 1):
        end = start + plan.duration_s
        if plan.say:
            text = plan.say.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            lines += [str(n), f"{_stamp(start)} --> {_stamp(end)}", text, ""]
        start = end
    return "\n".join(lines)


def _stamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
