"""Pictures of learn results, written to PNG or SVG files (Matplotlib's Agg canvas, no display).

- :func:`qini_plot` Qini curves of one or more scores against random targeting.
- :func:`regret_plot` cumulative regret of bandit policies over rounds.
- :func:`lift_plot` absolute lift with its confidence interval per variant and segment.

Each returns the path it wrote; the format follows the file's suffix (.png or .svg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from surmesure.drawing import FILES, settings
from surmesure.errors import InvalidInput
from surmesure.learn.uplift.metrics import Curve

FORMATS = (".png", ".svg")


@dataclass(frozen=True, slots=True)
class LiftBar:
    """One interval to draw: ``label`` (e.g. "segment / variant"), estimate and its CI."""

    label: str
    estimate: float
    ci_lower: float
    ci_upper: float


def _save(fig: Figure, path: Path) -> Path:
    if path.suffix.lower() not in FORMATS:
        raise InvalidInput(
            f"Plot file {path.name!r} is neither PNG nor SVG.",
            field="plot",
            hint="end the file name with .png or .svg",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with settings(FILES):
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def qini_plot(curves: Mapping[str, Curve], path: Path, title: str = "Qini curve") -> Path:
    """Qini curves (x: share of people targeted, y: incremental outcome) and the random line."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    end_x, end_y = 1.0, 0.0
    for name, curve in curves.items():
        ax.plot(curve.count / curve.n, curve.gain, label=name, linewidth=1.6)
        end_y = float(curve.gain[-1])
    ax.plot([0.0, end_x], [0.0, end_y], linestyle="--", color="grey", label="random")
    ax.set_xlabel("share of people targeted, highest predicted uplift first")
    ax.set_ylabel("incremental outcome (Qini)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def regret_plot(
    regrets: Mapping[str, npt.ArrayLike], path: Path, title: str = "Cumulative regret"
) -> Path:
    """Cumulative regret per policy; each value is a per-round regret series (1-D) or several
    runs of it (2-D, runs x rounds, drawn as their mean)."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    for name, series in regrets.items():
        r = np.asarray(series, dtype=np.float64)
        r = r.mean(axis=0) if r.ndim == 2 else r
        ax.plot(np.arange(1, r.size + 1), np.cumsum(r), label=name, linewidth=1.6)
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative regret (conversions lost)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)


def lift_plot(bars: Sequence[LiftBar], path: Path, title: str = "Lift by segment") -> Path:
    """Horizontal intervals, one row per bar, with a zero line (no effect)."""
    if not bars:
        raise InvalidInput("Nothing to plot.", field="plot", hint="compare at least one variant")
    fig = Figure(figsize=(6.4, 1.2 + 0.45 * len(bars)))
    ax = fig.add_subplot()
    rows = np.arange(len(bars))[::-1]
    est = np.array([b.estimate for b in bars])
    low = np.array([b.ci_lower for b in bars])
    high = np.array([b.ci_upper for b in bars])
    err = np.vstack([est - low, high - est])
    ax.errorbar(est, rows, xerr=np.nan_to_num(err), fmt="o", capsize=4, color="tab:blue")
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(rows, [b.label for b in bars])
    ax.set_xlabel("absolute lift against control, with confidence interval")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def lift_panels(
    panels: Mapping[str, Sequence[LiftBar]], path: Path, title: str = "Lift against control"
) -> Path:
    """One panel per metric (its name over the panel, its unit on the x axis), side by side,
    each with one interval per row and a zero line; the rows of every panel share labels."""
    drawn = {name: bars for name, bars in panels.items() if bars}
    if not drawn:
        raise InvalidInput("Nothing to plot.", field="plot", hint="compare at least one group")
    rows_n = max(len(b) for b in drawn.values())
    fig = Figure(figsize=(4.2 * len(drawn), 1.4 + 0.45 * rows_n))
    axes = fig.subplots(1, len(drawn), squeeze=False, sharey=True)[0]
    for i, (ax, (name, bars)) in enumerate(zip(axes, drawn.items(), strict=True)):
        rows = np.arange(len(bars))[::-1]
        est = np.array([b.estimate for b in bars], dtype=np.float64)
        low = np.array([b.ci_lower for b in bars], dtype=np.float64)
        high = np.array([b.ci_upper for b in bars], dtype=np.float64)
        err = np.nan_to_num(np.vstack([est - low, high - est]))
        ax.errorbar(est, rows, xerr=err, fmt="o", capsize=4, color="tab:blue")
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(rows, [b.label for b in bars])
        ax.tick_params(axis="y", labelleft=i == 0)
        ax.set_xlabel(name)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)
