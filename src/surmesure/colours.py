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


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""

    def luminance(colour: str) -> float:
        rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
