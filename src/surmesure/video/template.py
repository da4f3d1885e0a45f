"""A video template: a short film made for each person, as a validated document (YAML or JSON).

The film is a list of scenes played one after the other. Each scene lasts ``duration``
seconds (rounded to whole frames), shows a picture drawn for the person and has a voice-over,
``say``, read by espeak-ng in the template's locale (its text is also the scene's subtitle).
Every text (``say``, a title's ``texts``, a scene's ``title``...) is a Jinja template rendered
in the sandbox of decisions (:mod:`surmesure.decide.sandbox`, text mode: nothing is escaped,
since the result is drawn, spoken or written to WebVTT, each of which keeps text as text).

``fields`` are the personal values the texts read as ``person.NAME``, exactly as a content
template's (:class:`surmesure.domain.templates.FieldSpec`): a field is used only when the
trait exists, is reliable enough (``min_reliability``, default the template's 0.6) and the
person has not opted out of personalization; otherwise its ``fallback`` renders. Someone
nobody knows, or who opted out, gets the neutral film: every fallback, no chart, the best
sellers, "our stores".

Scene kinds (``kind``):

- ``title``: a background and text overlays;
- ``chart``: "your year with us", the person's monthly spend over the last ``months`` months
  (orders net of returns); the neutral scene shows ``neutral_text`` instead;
- ``products``: the person's recommendations as cards (the recommender decisions use), or the
  best sellers for the neutral film;
- ``store``: the person's preferred store (the trait ``store_trait`` when reliable, else the
  physical store of most of their orders), or ``neutral_text`` ("our stores").

Each scene fades in and out (``transition``), or crossfades into the next: the end of its
clip dissolves into the next scene's picture, so the film is still its clips joined as they are.

Besides ``person``, texts read ``locale``, ``currency``, ``now``, ``personal`` (whether this
scene is the person's own, false in its neutral version) and per scene kind: ``total`` and
``months`` (chart), ``products`` (products), ``store`` (store: ``name``, ``city``).

Example (YAML)::

    name: year_in_review
    locale: fr
    fields:
      first_name: {trait: first_name, fallback: ""}
    scenes:
      - kind: title
        duration: 4
        texts:
          - text: "Bonjour{% if person.first_name %} {{ person.first_name }}{% endif %} !"
        say: "Bonjour{% if person.first_name %} {{ person.first_name }}{% endif %} !"
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from surmesure.documents import error_path, read_document
from surmesure.domain.templates import FieldSpec, Name
from surmesure.domain.traits import DEFAULT_MIN_RELIABILITY
from surmesure.errors import InvalidInput

Colour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
#: the longest text a template's Jinja source may hold, in characters
MAX_SOURCE = 10_000
Source = Annotated[str, Field(max_length=MAX_SOURCE)]
#: espeak-ng voices per locale, unless the template names its own
VOICES = {"fr": "fr", "en": "en"}
#: the longest film, in seconds
MAX_FILM_S = 300.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Solid(_Model):
    """One colour."""

    kind: Literal["solid"] = "solid"
    colour: Colour = "#1d4ed8"


class Gradient(_Model):
    """A vertical gradient, ``top`` to ``bottom``."""

    kind: Literal["gradient"]
    top: Colour
    bottom: Colour


class Picture(_Model):
    """A picture (PNG, JPEG) or a clip (MP4, MOV, WebM: played under the scene, looped) filling
    the frame; a relative ``path`` is read from the template's folder."""

    kind: Literal["picture"]
    path: Annotated[str, Field(min_length=1, max_length=1024)]


Background = Annotated[Solid | Gradient | Picture, Field(discriminator="kind")]


class Overlay(_Model):
    """A text drawn on the frame: ``x``, ``y`` place its anchor as a share of the width and
    height, ``size`` is the font's height in pixels at 720 lines (scaled with the frame);
    ``align`` is where the anchor sits on the text. Long texts wrap, at most ``lines`` lines."""

    text: Source
    x: Annotated[float, Field(ge=0, le=1)] = 0.5
    y: Annotated[float, Field(ge=0, le=1)] = 0.5
    size: Annotated[int, Field(ge=8, le=200)] = 56
    colour: Colour = "#ffffff"
    bold: bool = True
    align: Literal["left", "center", "right"] = "center"
    lines: Annotated[int, Field(ge=1, le=6)] = 2


class Transition(_Model):
    """Fades at the scene's ends, in seconds (0: a cut). ``crossfade``: the scene's last
    seconds dissolve into the next scene's first picture (in place of a fade out; the next
    scene then starts at full picture, with no fade in). Crossfades join still scenes: neither
    may have a clip background."""

    fade_in: Annotated[float, Field(ge=0, le=5)] = 0.4
    fade_out: Annotated[float, Field(ge=0, le=5)] = 0.4
    crossfade: Annotated[float, Field(ge=0, le=5)] = 0.0


class _Scene(_Model):
    duration: Annotated[float, Field(gt=0, le=60)] = 4.0
    say: Source = ""
    background: Background = Field(default_factory=Solid)
    transition: Transition = Field(default_factory=Transition)

    @model_validator(mode="after")
    def _fades_fit(self) -> _Scene:
        fades = self.transition
        out = fades.crossfade or fades.fade_out
        if fades.fade_in + out > self.duration:
            raise ValueError(
                f"the fades ({fades.fade_in} + {out} s) last longer than the scene "
                f"({self.duration} s): shorten them"
            )
        return self


class TitleScene(_Scene):
    kind: Literal["title"]
    texts: list[Overlay] = Field(default_factory=list, max_length=8)


class ChartScene(_Scene):
    kind: Literal["chart"]
    title: Source = ""
    months: Annotated[int, Field(ge=1, le=36)] = 12
    neutral_text: Source = ""


class ProductsScene(_Scene):
    kind: Literal["products"]
    title: Source = ""
    count: Annotated[int, Field(ge=1, le=4)] = 3


class StoreScene(_Scene):
    kind: Literal["store"]
    title: Source = ""
    text: Source = ""
    neutral_text: Source = ""
    store_trait: Annotated[str, Field(min_length=1, max_length=128)] = "home_store_id"


Scene = Annotated[TitleScene | ChartScene | ProductsScene | StoreScene, Field(discriminator="kind")]
SCENE_KINDS = ("title", "chart", "products", "store")


class VideoTemplate(_Model):
    """A video template document, as authored (see the module). ``folder``: where relative
    picture paths are read from (the file's folder when loaded from a file)."""

    name: Name
    description: str = ""
    locale: Literal["fr", "en"] = "fr"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    width: Annotated[int, Field(ge=160, le=1920, multiple_of=2)] = 1280
    height: Annotated[int, Field(ge=90, le=1080, multiple_of=2)] = 720
    fps: Annotated[int, Field(ge=1, le=60)] = 25
    voice: Annotated[str, Field(pattern=r"^[a-z]{2,3}([-+][A-Za-z0-9_-]{1,20})?$")] | None = None
    min_reliability: Annotated[float, Field(ge=0, le=1)] = DEFAULT_MIN_RELIABILITY
    fields: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")], FieldSpec] = Field(
        default_factory=dict
    )
    scenes: Annotated[list[Scene], Field(min_length=1, max_length=20)]
    folder: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _not_too_long(self) -> VideoTemplate:
        total = sum(s.duration for s in self.scenes)
        if total > MAX_FILM_S:
            raise ValueError(f"the scenes last {total:g} s; a film lasts at most {MAX_FILM_S:g} s")
        for at, scene in enumerate(self.scenes):
            if scene.transition.crossfade:
                self._check_crossfade(at)
        return self

    def _check_crossfade(self, at: int) -> None:
        def refuse(reason: str, hint: str) -> PydanticCustomError:
            return PydanticCustomError(
                "invalid_crossfade",
                "{reason}",
                {"reason": reason, "field": f"scenes[{at}].transition.crossfade", "hint": hint},
            )

        if at == len(self.scenes) - 1:
            raise refuse("the last scene has no next scene to dissolve into",
                         "use fade_out for the film's end")  # fmt: skip
        for scene in self.scenes[at : at + 2]:
            background = scene.background
            if isinstance(background, Picture) and Path(background.path).suffix.lower() in (
                ".mp4", ".mov", ".webm", ".mkv",
            ):  # fmt: skip
                raise refuse("a crossfade joins still scenes, not a clip background",
                             "use fade_out and fade_in around a clip")  # fmt: skip

    @property
    def espeak_voice(self) -> str:
        return self.voice or VOICES[self.locale]

    def frames(self, scene: _Scene) -> int:
        """How many frames ``scene`` lasts (its duration rounded to whole frames, at least 1)."""
        return max(1, round(scene.duration * self.fps))

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove this field (check its spelling)",
    "union_tag_invalid": f"use one of: {', '.join(SCENE_KINDS)} (or solid, gradient, picture "
    "for a background)",
    "union_tag_not_found": "give the scene its `kind` (title, chart, products, store)",
    "string_pattern_mismatch": "see the README's video templates for the expected form",
}
_TAGS = {*SCENE_KINDS, "solid", "gradient", "picture"}


def parse_template(document: Any, folder: Path | None = None) -> VideoTemplate:
    """A validated video template; :class:`InvalidInput` naming the first faulty field (e.g.
    ``scenes[2].duration``) and the fix."""
    if not isinstance(document, dict):
        raise InvalidInput(
            "A video template is a mapping.",
            field="(document)",
            hint="write name:, locale: and scenes: at the top level",
        )
    try:
        return VideoTemplate.model_validate({**document, "folder": folder})
    except ValidationError as exc:
        error = exc.errors()[0]
        ctx = error.get("ctx") or {}
        loc = error["loc"]
        # a scene's or a background's kind, which Pydantic puts in the path, is not a field
        kept = [
            part
            for i, part in enumerate(loc)
            if not (
                part in _TAGS and i and (isinstance(loc[i - 1], int) or loc[i - 1] == "background")
            )
        ]
        path = error_path(tuple(kept))
        if ctx.get("field"):
            path = f"{path}.{ctx['field']}" if path != "(document)" else str(ctx["field"])
        hint = str(ctx.get("hint") or _HINTS.get(error["type"], "see the README's videos"))
        if error["type"] == "literal_error":
            hint = f"use one of: {ctx.get('expected', '')}"
        message = str(ctx.get("reason") or error["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{path}: {message}.", field=path, hint=hint) from exc


def load_template(path: Path) -> VideoTemplate:
    """The video template in the YAML or JSON file ``path`` (relative picture paths are read
    from its folder); :class:`InvalidInput` when it cannot be read or is not valid."""
    return parse_template(read_document(path), path.resolve().parent)
