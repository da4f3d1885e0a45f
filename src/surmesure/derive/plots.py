"""The report's figures, drawn with matplotlib (Agg) and returned as inline SVG text.

Each function takes plain data (NumPy arrays, lists) and returns one ``<svg>`` element, so a
page embeds it with no file and no network. Text stays text in the SVG (smaller, selectable).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, ParamSpec

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from surmesure.drawing import settings

# applied around each figure, not globally, so other plots of the process keep their style
STYLE: dict[str, Any] = dict(
    {
        "svg.fonttype": "none",
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
    }
)
ACCENT = "#2b6cb0"
P = ParamSpec("P")


def styled(draw: Callable[P, str]) -> Callable[P, str]:
    """Draw under the report's style."""

    @wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> str:
        with settings(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def to_svg(figure: Figure) -> str:
    """The figure as an ``<svg>`` element (the XML prologue dropped), then closed."""
    buffer = io.StringIO()
    # no metadata block: it names outside addresses and a date, and the page needs neither
    blank = {"Creator": None, "Date": None, "Format": None, "Type": None}
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata=blank)
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _annotate(ax: Axes, values: np.ndarray, labels: list[list[str]]) -> None:
    finite = values[np.isfinite(values)]
    middle = (finite.max() + finite.min()) / 2 if finite.size else 0.0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if labels[i][j]:
                dark = np.isfinite(values[i, j]) and values[i, j] > middle
                ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=8,
                        color="white" if dark else "#1a202c")  # fmt: skip


@styled
def rfm_grid(counts: np.ndarray, revenue: np.ndarray) -> str:
    """Two 5x5 heatmaps, R score (rows, 5 on top) by FM score (columns 1-5): people and
    revenue. ``counts[r - 1, fm - 1]`` and ``revenue[r - 1, fm - 1]``."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, data, title, fmt in (
        (axes[0], counts, "People per RFM cell", "{:,.0f}"),
        (axes[1], revenue, "Net revenue per RFM cell", "{:,.0f}"),
    ):
        shown = data[::-1]
        image = ax.imshow(shown, cmap="Blues", aspect="auto")
        ax.set_xticks(range(5), [str(i) for i in range(1, 6)])
        ax.set_yticks(range(5), [str(i) for i in range(5, 0, -1)])
        ax.set_xlabel("FM score (frequency and money)")
        ax.set_ylabel("R score (recency)")
        ax.set_title(title)
        _annotate(ax, shown, [[fmt.format(v) for v in row] for row in shown])
        figure.colorbar(image, ax=ax, shrink=0.8)
    return to_svg(figure)


@styled
def clv_distribution(values: np.ndarray) -> str:
    """Histogram of expected value per buyer (log-spaced bins), the top-decile threshold
    marked."""
    figure, ax = plt.subplots(figsize=(11, 3.8))
    positive = values[values > 0]
    if positive.size == 0:
        ax.text(0.5, 0.5, "no expected value yet", ha="center", transform=ax.transAxes)
        return to_svg(figure)
    bins = np.geomspace(max(positive.min(), 0.01), positive.max() * 1.01, 40)
    ax.hist(positive, bins=bins.tolist(), color=ACCENT, alpha=0.85)
    ax.set_xscale("log")
    threshold = float(np.quantile(values, 0.9))
    share = values[values >= threshold].sum() / values.sum() if values.sum() > 0 else 0.0
    ax.axvline(threshold, color="#c53030", linestyle="--")
    ax.annotate(f"top 10 % from {threshold:,.0f}\n= {share:.0%} of all expected value",
                (threshold, ax.get_ylim()[1] * 0.9), xytext=(8, 0), textcoords="offset points",
                color="#c53030", va="top")  # fmt: skip
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:,.0f}" if x >= 1 else f"{x:g}")
    ax.set_xlabel("expected value over the horizon (log scale)")
    ax.set_ylabel("buyers")
    return to_svg(figure)


@styled
def retention_heatmap(
    months: Sequence[str], sizes: Sequence[int], matrix: np.ndarray, unit: str = "months"
) -> str:
    """Cohorts (rows, first-purchase period, buyers) by periods since (``unit``: months or
    quarters; columns from 1: period 0 is always 100 % and would flatten the colours), share
    retained; NaN cells (the future) are left blank."""
    shown = matrix[:, 1:] if matrix.shape[1] > 1 else np.full((matrix.shape[0], 1), np.nan)
    rows, cols = shown.shape
    figure, ax = plt.subplots(figsize=(11, max(2.5, 0.34 * rows + 1.2)))
    image = ax.imshow(shown, cmap="YlGnBu", aspect="auto", vmin=0)
    labels = [["" if not np.isfinite(v) or cols > 24 else f"{v:.0%}" for v in r] for r in shown]
    _annotate(ax, shown, labels)
    step = max(1, cols // 24)
    ax.set_xticks(range(0, cols, step), [f"+{i + 1}" for i in range(0, cols, step)])
    ax.set_yticks(range(rows), [f"{m} ({n:,})" for m, n in zip(months, sizes, strict=True)])
    ax.set_xlabel(f"{unit} since the first purchase")
    ax.set_ylabel("first purchase (buyers)")
    figure.colorbar(image, ax=ax, shrink=0.8, format=lambda x, _: f"{x:.0%}")
    return to_svg(figure)


@styled
def nps_over_time(months: Sequence[str], scores: Sequence[float], answers: Sequence[int]) -> str:
    """NPS per month (line, -100 to 100) over the number of answers (bars)."""
    figure, ax = plt.subplots(figsize=(11, 3.6))
    x = np.arange(len(months))
    bars = ax.twinx()
    bars.bar(x, answers, color="#e2e8f0", width=0.7)
    bars.set_ylabel("answers", color="#718096")
    bars.spines["right"].set_visible(True)
    ax.set_zorder(bars.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(x, scores, color=ACCENT, linewidth=1.2, zorder=2)
    # a month of few answers says little: its point is drawn smaller
    size = 12 + 150 * np.sqrt(np.asarray(answers, float) / max(max(answers), 1))
    ax.scatter(x, scores, s=size, color=ACCENT, zorder=3)
    ax.axhline(0, color="#a0aec0", linewidth=0.8)
    ax.set_ylim(-100, 100)
    ax.set_ylabel("NPS")
    step = max(1, len(months) // 18)
    ax.set_xticks(x[::step], list(months)[::step], rotation=45, ha="right")
    return to_svg(figure)


@styled
def appetence_by_segment(
    segments: Sequence[str], channels: Sequence[str], rates: np.ndarray, people: np.ndarray
) -> str:
    """Mean smoothed appetence per RFM segment (rows) and channel (columns), with the number of
    people behind each cell; channels with no data are left out. One colour scale for every
    cell, from 0 to the highest rate, so that a pale cell is a low rate and not merely one
    below its channel's mean; an empty cell has nobody behind it."""
    kept = [j for j in range(len(channels)) if np.isfinite(rates[:, j]).any()]
    rates, people = rates[:, kept], people[:, kept]
    figure, ax = plt.subplots(figsize=(11, max(2.5, 0.5 * len(segments) + 1.2)))
    top = max(float(np.nanmax(rates)), 1e-9)
    image = ax.imshow(rates, cmap="Blues", aspect="auto", vmin=0.0, vmax=top)
    for i in range(rates.shape[0]):
        for j in range(rates.shape[1]):
            if not np.isfinite(rates[i, j]):
                continue
            ax.text(j, i, f"{rates[i, j]:.1%}\n{int(people[i, j]):,} people", ha="center",
                    va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.6 * top else "#1a202c")  # fmt: skip
    ax.set_xticks(range(len(kept)), [channels[j] for j in kept])
    ax.set_yticks(range(len(segments)), list(segments))
    figure.colorbar(image, ax=ax, shrink=0.8, format=lambda x, _: f"{x:.0%}",
                    label="response rate, from 0")  # fmt: skip
    return to_svg(figure)


@styled
def engagement_by_segment(segments: Sequence[str], scores: Sequence[np.ndarray]) -> str:
    """Box plot of the engagement score (0-100) per RFM segment (one row each, the first on
    top), with the number of people scored beside each box."""
    figure, ax = plt.subplots(figsize=(11, max(2.5, 0.42 * len(segments) + 1.2)))
    positions = np.arange(len(segments))[::-1]
    ax.boxplot(
        [np.asarray(v, float) for v in scores], positions=positions, widths=0.6,
        orientation="horizontal", patch_artist=True, showfliers=False,
        boxprops={"facecolor": "#bee3f8", "edgecolor": ACCENT},
        medianprops={"color": "#c53030", "linewidth": 1.5},
    )  # fmt: skip
    labels = [f"{name} ({len(v):,})" for name, v in zip(segments, scores, strict=True)]
    ax.set_yticks(positions, labels)
    ax.set_xlim(0, 100)
    ax.set_xlabel("engagement score")
    return to_svg(figure)
