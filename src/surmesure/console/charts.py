"""Charts as SVG drawn by Matplotlib, for pages people look at: text stays text (searchable,
read by screen readers beside each chart's caption), and every colour passes WCAG AA against
the white background (at least 4.5:1 for text and 3:1 for marks: :data:`PALETTE`)."""

from __future__ import annotations

import functools
import io
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from surmesure.colours import GRID, INK, LIGHTEST_HALF, PALETTE
from surmesure.drawing import settings

__all__ = ["GRID", "INK", "LIGHTEST_HALF", "PALETTE", "bar_chart", "heatmap", "line_chart"]

_HEADER = re.compile(r"^.*?(?=<svg)", re.S)
#: text as text in the SVG (not paths), in the page's own font
_TEXT = {"svg.fonttype": "none", "svg.hashsalt": "surmesure"}


P = ParamSpec("P")
#: charts kept, drawn already: a page asking for the same chart of the same data again (the
#: home page's trends, a journey whose counts did not move) costs a look-up, not a drawing
KEPT = 256


def memo(draw: Callable[P, str]) -> Callable[P, str]:
    """``draw`` remembering its last :data:`KEPT` charts, keyed by what it was given."""
    kept: OrderedDict[str, str] = OrderedDict()
    lock = threading.Lock()

    @functools.wraps(draw)
    def drawn(*args: P.args, **kwargs: P.kwargs) -> str:
        key = repr((args, sorted(kwargs.items())))
        with lock:
            if key in kept:
                kept.move_to_end(key)
                return kept[key]
        svg = draw(*args, **kwargs)
        with lock:
            kept[key] = svg
            while len(kept) > KEPT:
                kept.popitem(last=False)
        return svg

    return drawn


def figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=96)
    fig.patch.set_alpha(0)
    return fig


def svg_of(fig: Figure, label: str) -> str:
    buffer = io.StringIO()
    FigureCanvasSVG(fig)
    with settings(_TEXT):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = _HEADER.sub("", buffer.getvalue(), count=1)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(label)}" ', 1)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _style(ax: object) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)  # type: ignore[attr-defined]
    ax.tick_params(colors=INK, labelsize=9)  # type: ignore[attr-defined]
    ax.grid(axis="y", color=GRID, linewidth=0.6)  # type: ignore[attr-defined]
    ax.set_axisbelow(True)  # type: ignore[attr-defined]


def _finish(fig: Figure, ax: Any, labels: Sequence[str], series: int, label: str) -> str:
    """A chart's x labels (at most about six), its style, a legend when it has several
    series, and its SVG."""
    ticks = list(range(len(labels)))[:: max(1, len(labels) // 6)]
    ax.set_xticks(ticks, [labels[i] for i in ticks])
    _style(ax)
    if series > 1:
        ax.legend(frameon=False, fontsize=8, labelcolor=INK)
    return svg_of(fig, label)


@memo
def line_chart(
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    label: str,
    width: float = 5.2,
    height: float = 2.2,
) -> str:
    """Lines over ``labels`` (one per series, a legend when there are several)."""
    fig = figure(width, height)
    ax = fig.add_subplot()
    x = list(range(len(labels)))
    for i, (name, values) in enumerate(series.items()):
        ys = [float("nan") if v is None else float(v) for v in values]
        ax.plot(
            x,
            ys,
            color=PALETTE[i % len(PALETTE)],
            linewidth=2,
            marker="o",
            markersize=3,
            label=name,
        )
    return _finish(fig, ax, labels, len(series), label)


@memo
def bar_chart(
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    label: str,
    width: float = 5.2,
    height: float = 2.4,
    errors: dict[str, Sequence[tuple[float, float]]] | None = None,
) -> str:
    """Grouped bars: one group per label, one bar per series; ``errors`` gives a series'
    interval (low, high) per label."""
    fig = figure(width, height)
    ax = fig.add_subplot()
    n = max(1, len(series))
    bar = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * bar for j in range(len(labels))]
        yerr = None
        if errors and name in errors:
            lows, highs = zip(*errors[name], strict=True) if errors[name] else ((), ())
            yerr = [
                [max(0.0, v - lo) for v, lo in zip(values, lows, strict=True)],
                [max(0.0, hi - v) for v, hi in zip(values, highs, strict=True)],
            ]
        ax.bar(
            xs,
            values,
            bar * 0.92,
            color=PALETTE[i % len(PALETTE)],
            label=name,
            yerr=yerr,
            ecolor=INK,
            capsize=3,
        )
    ax.axhline(0, color=INK, linewidth=0.8)
    return _finish(fig, ax, labels, len(series), label)


@memo
def heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    cells: Sequence[Sequence[float]],
    *,
    label: str,
    text: Sequence[Sequence[str]] | None = None,
) -> str:
    """A matrix in the lighter half of one blue scale, so the dark text of every cell reads at
    AA contrast (at least 4.5:1) on every shade."""
    fig = figure(max(3.0, 0.9 * len(cols) + 1.5), max(2.0, 0.5 * len(rows) + 1.0))
    ax = fig.add_subplot()
    top = max((max(r) for r in cells if len(r)), default=1.0) or 1.0
    ax.imshow(cells, cmap="Blues", vmin=0, vmax=top / LIGHTEST_HALF, aspect="auto")
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            ax.text(
                j,
                i,
                text[i][j] if text else f"{value:,.0f}",
                ha="center",
                va="center",
                fontsize=8,
                color=INK,
            )
    ax.set_xticks(range(len(cols)), list(cols), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), list(rows))
    ax.tick_params(colors=INK, labelsize=8)
    return svg_of(fig, label)
