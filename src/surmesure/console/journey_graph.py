"""A journey drawn as a graph: its steps in layers from the first one down, each box with the
step's kind and the people now on it and through it, each arrow with the exit it stands for
(``timeout``, ``branch.then``, a split's path...). Drawn by Matplotlib as SVG (text stays
text), in the console's accessible colours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from surmesure.console.charts import INK, PALETTE, figure, memo, svg_of
from surmesure.journeys.steps import Step, exits

#: colours of the boxes by kind: a light fill, the dark text reads on each at over 7:1
FILLS = {
    "send": "#dbeafe",
    "wait": "#f3f4f6",
    "wait_for_event": "#fef3c7",
    "split": "#ede9fe",
    "branch": "#ede9fe",
    "exit": "#d1fae5",
}


def kind_of(step: Step) -> str:
    name = type(step).__name__.removesuffix("Step")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def layers(steps: Sequence[Step]) -> dict[str, int]:
    """Each step's layer: its distance from the first step (arrows going back up are loops)."""
    if not steps:
        return {}
    by_id = {s.id: s for s in steps}
    depth = {steps[0].id: 0}
    queue = [steps[0].id]
    while queue:
        current = queue.pop(0)
        for _, target in exits(by_id[current]):
            if target in by_id and target not in depth:
                depth[target] = depth[current] + 1
                queue.append(target)
    last = max(depth.values(), default=0)
    for s in steps:  # unreachable steps (refused on publishing) still get a place
        depth.setdefault(s.id, last + 1)
    return depth


@memo
def draw(steps: Sequence[Step], counts: Mapping[str, Mapping[str, int]], *, label: str) -> str:
    """The SVG of ``steps``; ``counts[step]`` holds ``now`` and ``through``."""
    depth = layers(steps)
    rows: dict[int, list[str]] = {}
    for s in steps:
        rows.setdefault(depth[s.id], []).append(s.id)
    widest = max((len(r) for r in rows.values()), default=1)
    fig = figure(max(4.0, 2.3 * widest), max(2.0, 1.05 * len(rows)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.5, widest - 0.5)
    ax.set_ylim(-len(rows) + 0.5, 0.6)
    ax.axis("off")
    place: dict[str, tuple[float, float]] = {}
    for level, ids in rows.items():
        offset = (widest - len(ids)) / 2
        for i, sid in enumerate(ids):
            place[sid] = (offset + i, -level)
    box_w, box_h = 0.86, 0.62
    for s in steps:
        x, y = place[s.id]
        kind = kind_of(s)
        ax.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.02,rounding_size=0.06",
                facecolor=FILLS.get(kind, "#ffffff"),
                edgecolor=INK,
                linewidth=0.8,
            )
        )
        c = counts.get(s.id, {})
        ax.text(
            x, y + 0.13, s.id, ha="center", va="center", fontsize=9, color=INK, fontweight="bold"
        )
        ax.text(
            x, y - 0.05, kind.replace("_", " "), ha="center", va="center", fontsize=7.5, color=INK
        )
        ax.text(
            x,
            y - 0.21,
            f"now {c.get('now', 0):,} · through {c.get('through', 0):,}",
            ha="center",
            va="center",
            fontsize=7.5,
            color=INK,
        )
    for s in steps:
        for field, target in exits(s):
            if target not in place:
                continue
            (x0, y0), (x1, y1) = place[s.id], place[target]
            back = y1 >= y0
            arrow = FancyArrowPatch(
                (x0, y0 - box_h / 2),
                (x1, y1 + box_h / 2) if not back else (x1 + box_w / 2, y1),
                arrowstyle="-|>",
                mutation_scale=9,
                linewidth=0.9,
                color=PALETTE[1] if back or field != "next" else INK,
                connectionstyle="arc3,rad=0.35" if back else "arc3,rad=0.0",
            )
            ax.add_patch(arrow)
            if field != "next":
                ax.text(
                    (x0 + x1) / 2 + 0.05,
                    (y0 + y1) / 2,
                    field.replace("split.", ""),
                    fontsize=7,
                    color=PALETTE[1],
                    ha="left",
                    va="center",
                    backgroundcolor="#ffffff",
                )
    return svg_of(fig, label)
