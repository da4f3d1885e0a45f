"""The overlap heatmap the CLI writes reads at WCAG AA: dark text on the lighter half of the
blue scale only, as the console's heatmaps."""

from __future__ import annotations

import re
from pathlib import Path

from matplotlib import colormaps
from matplotlib.colors import to_hex

from surmesure.colours import INK, LIGHTEST_HALF, contrast
from surmesure.segment.reports import plot_overlap


def test_every_cell_of_the_overlap_plot_reads_at_aa(tmp_path: Path) -> None:
    darkest = to_hex(colormaps["Blues"](LIGHTEST_HALF))  # a full overlap's shade
    assert contrast(INK, darkest) >= 4.5
    path = plot_overlap(["a", "b"], [[100, 100], [100, 100]], tmp_path / "overlap.svg")
    svg = path.read_text()
    # every text: the labels, the title, the colour bar's ticks and the count in each cell
    texts = re.findall(r"<!--([^>]*?)-->\s*<g style=\"fill: (#\w+)\"", svg)
    cells = [t for t, _ in texts if "%" in t]
    assert len(cells) == 4 and all("100%" in t for t in cells)  # each cell's share is written
    assert {fill.lower() for _, fill in texts} == {INK}  # none white (as the old plot wrote)
