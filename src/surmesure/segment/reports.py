"""What a marketer looks at: a sample of members with the values that put them in, and the
overlap between segments as a heatmap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from surmesure.colours import INK, LIGHTEST_HALF
from surmesure.domain.segments import MetricNode, SegmentDefinition, TraitNode, walk
from surmesure.drawing import FILES, settings
from surmesure.segment.definitions import closure
from surmesure.segment.membership import members
from surmesure.segment.snapshot import traits_of
from surmesure.store.engine import Store
from surmesure.unify.reader import SqlPersonReader


def mentioned(
    definition: SegmentDefinition, catalog: Mapping[str, SegmentDefinition]
) -> tuple[list[str], list[str]]:
    """Trait names and metric names the definition (and those it refers to) tests, sorted."""
    traits: set[str] = set()
    metrics: set[str] = set()
    for d in closure(definition, catalog).values():
        for _, leaf in walk(d.where):
            if isinstance(leaf, TraitNode):
                traits.add(leaf.trait.name)
            elif isinstance(leaf, MetricNode):
                metrics.add(leaf.metric.name)
    return sorted(traits), sorted(metrics)


def preview(
    store: Store,
    definition: SegmentDefinition,
    catalog: Mapping[str, SegmentDefinition],
    now: datetime,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Up to ``limit`` members (smallest ids first), each with the traits (value and effective
    reliability) and metrics the definition mentions; ``None`` where the person has none."""
    with store.connect() as conn:
        ids = members(conn, store, definition, now, catalog, limit=limit)
    return values_of(store, definition, catalog, now, ids)


def values_of(
    store: Store,
    definition: SegmentDefinition,
    catalog: Mapping[str, SegmentDefinition],
    now: datetime,
    person_ids: Sequence[int],
) -> list[dict[str, Any]]:
    """:func:`preview`'s rows of ``person_ids`` (members found by any engine), in their order."""
    traits, metrics = mentioned(definition, catalog)
    half_life = store.settings.trait_half_life_days
    rows = []
    with store.connect() as conn:
        # everyone in one read, of the traits and metrics shown only (not a whole snapshot)
        reads = SqlPersonReader(conn, frozenset(metrics)).read_many(person_ids, now, traits)
    for pid in person_ids:
        read = reads.get(pid)
        held_traits = {} if read is None else traits_of(read, now, half_life)
        held_metrics = {} if read is None else read.latest_metrics(now)
        row: dict[str, Any] = {"person_id": pid}
        for name in traits:
            held = held_traits.get(name)
            row[f"trait.{name}"] = None if held is None else held.value
            row[f"reliability.{name}"] = (
                None if held is None else round(held.effective_reliability, 3)
            )
        for name in metrics:
            row[f"metric.{name}"] = held_metrics.get(name)
        rows.append(row)
    return rows


def plot_overlap(names: Sequence[str], matrix: Sequence[Sequence[int]], path: Path) -> Path:
    """A heatmap of the share of each row's segment that is also in each column's segment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = [[(cell / row[i]) if row[i] else 0.0 for cell in row] for i, row in enumerate(matrix)]
    size = 1.2 + 0.9 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    # the lighter half of the scale only, so the dark text reads on every cell (WCAG AA)
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0 / LIGHTEST_HALF)
    ax.set_xticks(range(len(names)), labels=list(names), rotation=45, ha="right", color=INK)
    ax.set_yticks(range(len(names)), labels=list(names), color=INK)
    for i, row in enumerate(matrix):
        for j, cell in enumerate(row):
            ax.text(j, i, f"{cell:,}\n{shares[i][j]:.0%}", ha="center", va="center", color=INK)
    ax.set_title("Segment overlap (share of the row's segment)", color=INK)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.ax.set_ylim(0.0, 1.0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with settings(FILES):
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_centroids(
    labels: Sequence[str], features: Sequence[str], z: Sequence[Sequence[float]], path: Path
) -> Path:
    """A heatmap of the standardized centroid of each cluster (rows) on each feature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    limit = max(1.0, max((abs(v) for row in z for v in row), default=1.0))
    fig, ax = plt.subplots(figsize=(2.0 + 0.9 * len(features), 1.5 + 0.6 * len(labels)))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(features)), labels=list(features), rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels=list(labels))
    for i, row in enumerate(z):
        for j, value in enumerate(row):
            colour = "white" if abs(value) > 0.6 * limit else "black"
            ax.text(j, i, f"{value:+.1f}", ha="center", va="center", color=colour)
    ax.set_title("Discovered segments: centroids (z-scores)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with settings(FILES):
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
