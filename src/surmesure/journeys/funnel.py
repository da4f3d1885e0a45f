"""What a simulated journey did: the funnel (people who entered, went through each step, sends
per step, how the journey ended for each), and its picture."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from surmesure.drawing import FILES, settings


@dataclass
class Funnel:
    journey: str
    start: datetime
    end: datetime
    entered: int = 0
    people: int = 0
    through: Counter[str] = field(default_factory=Counter)
    sends: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    ended: Counter[str] = field(default_factory=Counter)
    running: int = 0
    transitions: int = 0
    signals: int = 0
    seconds: float = 0.0

    def document(self, order: list[str]) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "start": self.start,
            "end": self.end,
            "entered": self.entered,
            "people": self.people,
            "steps": [
                {
                    "step": s,
                    "through": self.through.get(s, 0),
                    "sends": self.sends.get(s, 0),
                    "held_out": self.held.get(s, 0),
                }
                for s in order
            ],
            "ended": dict(sorted(self.ended.items())),
            "running": self.running,
            "goals": self.ended.get("goal", 0),
            "conversion": self.ended.get("goal", 0) / self.entered if self.entered else None,
            "transitions": self.transitions,
            "signals": self.signals,
            "seconds": round(self.seconds, 3),
            "transitions_per_second": round(self.transitions / self.seconds)
            if self.seconds
            else None,
        }


def plot(funnel: Funnel, order: list[str], path: Path) -> Path:
    """The funnel as a picture: people through each step, sends marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["entered", *order]
    values = np.asarray([funnel.entered, *(funnel.through.get(s, 0) for s in order)], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
    bars = ax.barh(labels[::-1], values[::-1], color="#4C72B0")
    for bar, value in zip(bars, values[::-1], strict=True):
        ax.text(
            bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {int(value):,}", va="center"
        )
    ax.set_xlabel("people")
    ax.set_title(f"Journey {funnel.journey}: {funnel.start:%Y-%m-%d} to {funnel.end:%Y-%m-%d}")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    with settings(FILES):
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
