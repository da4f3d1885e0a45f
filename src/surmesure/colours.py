"""Colours every chart shares (the console's SVG, the CLI's PNG plots), each passing WCAG AA
against white: at least 4.5:1 for text and 3:1 for marks."""

from __future__ import annotations

#: marks' colours, each at least 4.5:1 against white
PALETTE = ("#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490")
#: text and axes
INK = "#1f2937"
GRID = "#d1d5db"
#: the share of the blue scale a heatmap uses: its darkest shade still holds dark text at 4.5:1
LIGHTEST_HALF = 0.5
