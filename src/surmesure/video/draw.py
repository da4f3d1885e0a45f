"""A scene's picture, drawn once with Pillow from its plan (:mod:`surmesure.video.plan`).

Every scene is a still picture (the fades are ffmpeg's), so a clip costs one drawing. Sizes in
a plan are pixels at 720 lines, scaled to the film's height. Text is set in DejaVu Sans (the
fonts ``make system`` installs), wrapped to its box and cut with ``…`` past its lines; a
character the font has no glyph for (an emoji, say) is left out rather than drawn as a blank
box, never an error. Colours come from
:mod:`surmesure.colours`, the charts' palette. Over a clip background the picture is drawn on
a transparent canvas, laid over the clip by ffmpeg.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from surmesure.colours import GRID, INK, PALETTE

FONTS = Path("/usr/share/fonts/truetype/dejavu")
WHITE = "#ffffff"
Font = ImageFont.FreeTypeFont


def _name(bold: bool) -> str:
    return "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"


@lru_cache(maxsize=64)
def font(size: int, bold: bool = False) -> Font:
    return ImageFont.truetype(str(FONTS / _name(bold)), max(6, size))


@lru_cache(maxsize=2)
def _glyphs(bold: bool) -> frozenset[int]:
    """The characters the face has a glyph for."""
    from fontTools.ttLib import TTFont

    with TTFont(str(FONTS / _name(bold)), lazy=True) as face:
        return frozenset(face.getBestCmap())


def drawable(text: str, bold: bool = False) -> str:
    """``text`` without the characters the face has no glyph for (emoji and their joiners),
    spaces left single."""
    glyphs = _glyphs(bold)
    if all(ord(c) in glyphs or c.isspace() for c in text):
        return text
    kept = "".join(c for c in text if ord(c) in glyphs or c.isspace())
    return re.sub(r" {2,}", " ", kept).strip()


def draw_scene(spec: dict[str, Any]) -> Image.Image:
    """The picture of the scene ``spec`` (RGB; RGBA over a clip background)."""
    width, height = spec["size"]
    canvas = _background(spec["background"], width, height)
    scale = height / 720
    kind = spec["kind"]
    if kind == "title":
        for overlay in spec["texts"]:
            _overlay(canvas, overlay, scale)
    elif kind == "chart":
        _title(canvas, spec["title"], scale)
        if "values" in spec:
            _chart(canvas, spec["labels"], spec["values"], scale)
        else:
            _centred(canvas, spec["text"], scale)
    elif kind == "products":
        _title(canvas, spec["title"], scale)
        _cards(canvas, spec["cards"], scale)
    else:
        _title(canvas, spec["title"], scale)
        _pin(canvas, scale)
        _centred(canvas, spec["text"], scale, y=0.62)
    return canvas


def _background(background: dict[str, Any], width: int, height: int) -> Image.Image:
    kind = background["kind"]
    if kind == "solid":
        return Image.new("RGB", (width, height), background["colour"])
    if kind == "gradient":
        top = np.array(_rgb(background["top"]), dtype=np.float32)
        bottom = np.array(_rgb(background["bottom"]), dtype=np.float32)
        share = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
        rows = (top * (1 - share) + bottom * share).astype(np.uint8)
        return Image.fromarray(np.repeat(rows[:, None, :], width, axis=1), "RGB")
    if background["clip"]:
        return Image.new("RGBA", (width, height), (0, 0, 0, 0))
    with Image.open(background["path"]) as picture:
        return ImageOps.fit(picture.convert("RGB"), (width, height))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def wrap(text: str, face: Font, width: float, lines: int) -> list[str]:
    """``text`` in at most ``lines`` lines of at most ``width`` pixels (a word longer than a
    line is cut), the last one ending in ``…`` when the text goes on."""
    out: list[str] = []
    words = text.split()
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if face.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            out.append(current)
        current = word
        while face.getlength(current) > width and len(current) > 1:
            cut = _fit(current, face, width)
            out.append(current[:cut])
            current = current[cut:]
        if len(out) > lines:
            break
    if current:
        out.append(current)
    if len(out) > lines:
        out = out[:lines]
        last = out[-1]
        while last and face.getlength(last + "…") > width:
            last = last[:-1]
        out[-1] = last + "…"
    return out


def _fit(text: str, face: Font, width: float) -> int:
    """How many leading characters of ``text`` fit in ``width`` (at least 1)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if face.getlength(text[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _block(
    canvas: Image.Image,
    text: str,
    face: Font,
    x: float,
    y: float,
    box: float,
    lines: int,
    colour: str,
    align: str = "center",
) -> None:
    """``text`` wrapped in a box ``box`` pixels wide, its anchor at ``(x, y)`` (the middle of
    the block's height; ``align`` the side of the text the anchor is on)."""
    text = drawable(text, "Bold" in (face.getname()[1] or ""))
    if not text:
        return
    rows = wrap(text, face, box, lines)
    step = face.size * 1.25
    top = y - step * len(rows) / 2
    draw = ImageDraw.Draw(canvas)
    anchor = {"left": "lm", "center": "mm", "right": "rm"}[align]
    for i, row in enumerate(rows):
        draw.text((x, top + step * (i + 0.5)), row, font=face, fill=colour, anchor=anchor)


def _overlay(canvas: Image.Image, overlay: dict[str, Any], scale: float) -> None:
    width, height = canvas.size
    x = overlay["x"] * width
    room = {"left": width - x, "center": 2 * min(x, width - x), "right": x}[overlay["align"]]
    face = font(round(overlay["size"] * scale), overlay["bold"])
    box = max(face.size, room - 48 * scale)
    _block(canvas, overlay["text"], face, x, overlay["y"] * height, box, overlay["lines"],
           overlay["colour"], overlay["align"])  # fmt: skip


def _title(canvas: Image.Image, text: str, scale: float) -> None:
    width, _ = canvas.size
    _block(canvas, text, font(round(44 * scale), True), width / 2, 90 * scale,
           width - 120 * scale, 2, WHITE)  # fmt: skip


def _centred(canvas: Image.Image, text: str, scale: float, y: float = 0.55) -> None:
    width, height = canvas.size
    _block(canvas, text, font(round(40 * scale)), width / 2, height * y, width - 200 * scale,
           4, WHITE)  # fmt: skip


def _panel(canvas: Image.Image, box: tuple[float, float, float, float], scale: float) -> None:
    ImageDraw.Draw(canvas).rounded_rectangle(box, radius=round(18 * scale), fill=WHITE)


def _chart(canvas: Image.Image, labels: list[str], values: list[float], scale: float) -> None:
    """Monthly bars on a white panel, in the console charts' style."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = canvas.size
    left, top, right, bottom = 100 * scale, 170 * scale, width - 100 * scale, height - 50 * scale
    _panel(canvas, (left, top, right, bottom), scale)
    pad = 20 * scale
    w, h = round(right - left - 2 * pad), round(bottom - top - 2 * pad)
    fig = Figure(figsize=(w / 100, h / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(range(len(values)), values, 0.7, color=PALETTE[0])
    ax.set_xticks(range(len(labels)), labels)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=INK, labelsize=max(6, round(13 * scale)))
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="raw", dpi=100)
    drawn = Image.frombuffer("RGBA", (w, h), buffer.getvalue(), "raw", "RGBA", 0, 1)
    canvas.paste(drawn, (round(left + pad), round(top + pad)), drawn)


def _cards(canvas: Image.Image, cards: list[dict[str, Any]], scale: float) -> None:
    """One card per product, side by side: its picture (or a drawn tile), name and price."""
    if not cards:
        return
    width, height = canvas.size
    gap = 30 * scale
    card_w = min(300 * scale, (width - 100 * scale - gap * (len(cards) - 1)) / len(cards))
    left = (width - card_w * len(cards) - gap * (len(cards) - 1)) / 2
    top, bottom = 170 * scale, height - 60 * scale
    draw = ImageDraw.Draw(canvas)
    for i, card in enumerate(cards):
        x = left + i * (card_w + gap)
        _panel(canvas, (x, top, x + card_w, bottom), scale)
        pic = (round(x + 15 * scale), round(top + 15 * scale))
        size = (round(card_w - 30 * scale), round((bottom - top) * 0.55))
        if card["picture"] is not None:
            with Image.open(card["picture"][0]) as picture:
                canvas.paste(ImageOps.fit(picture.convert("RGB"), size), pic)
        else:
            colour = PALETTE[i % len(PALETTE)]
            draw.rounded_rectangle((*pic, pic[0] + size[0], pic[1] + size[1]),
                                   radius=round(12 * scale), fill=colour)  # fmt: skip
            initial = (drawable(card["name"] or "", bold=True) or "?")[0].upper()
            draw.text((pic[0] + size[0] / 2, pic[1] + size[1] / 2), initial,
                      font=font(round(90 * scale), True), fill=WHITE, anchor="mm")  # fmt: skip
        name_y = pic[1] + size[1] + 45 * scale
        _block(canvas, card["name"], font(round(24 * scale), True), x + card_w / 2, name_y,
               card_w - 30 * scale, 2, INK)  # fmt: skip
        _block(canvas, card["price"], font(round(28 * scale)), x + card_w / 2,
               bottom - 35 * scale, card_w - 30 * scale, 1, PALETTE[0])  # fmt: skip


def _pin(canvas: Image.Image, scale: float) -> None:
    """A map pin above the store's text."""
    width, height = canvas.size
    cx, cy, r = width / 2, height * 0.36, 46 * scale
    draw = ImageDraw.Draw(canvas)
    draw.polygon([(cx - r * 0.8, cy + r * 0.5), (cx + r * 0.8, cy + r * 0.5), (cx, cy + r * 2)],
                 fill=WHITE)  # fmt: skip
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=WHITE)
    draw.ellipse((cx - r / 2.4, cy - r / 2.4, cx + r / 2.4, cy + r / 2.4), fill=PALETTE[0])
