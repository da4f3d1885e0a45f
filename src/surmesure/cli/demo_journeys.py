"""The demo's journeys: the two shipped examples (a welcome series after a first product added
to the basket, an abandoned-browse reminder that switches to similar products when the product
runs out) published on the demo world, then each replayed over the last 30 days of its history
(:mod:`surmesure.journeys.simulate`) and shown as a funnel."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from surmesure.cli.common import console
from surmesure.journeys import published
from surmesure.journeys.funnel import plot
from surmesure.journeys.simulate import simulate
from surmesure.store import Store

EXAMPLES = Path(__file__).resolve().parents[1] / "journeys" / "examples"
NAMES = ("welcome", "abandoned_browse")


def journeys_demo(store: Store, out: Path, now: datetime, days: int = 30) -> list[dict[str, Any]]:
    """Publish each example and replay it; its funnel (and its picture in ``out``)."""
    funnels = []
    for name in NAMES:
        definition = published.load_file(EXAMPLES / f"{name}.yaml")
        version = published.publish(store, definition, now).version
        funnel = simulate(store, definition, days)
        order = [s.id for s in definition.steps]
        document = funnel.document(order)
        document["version"] = version
        document["plot"] = str(plot(funnel, order, out / f"journey_{name}.png"))
        funnels.append(document)
    return funnels


def print_journeys(funnels: list[dict[str, Any]]) -> None:
    for f in funnels:
        table = Table(title=f"journey {f['journey']}: {f['start']:%Y-%m-%d} to {f['end']:%Y-%m-%d}")
        for column in ("step", "went through", "sends", "held out"):
            table.add_column(column, justify="left" if column == "step" else "right")
        table.add_row("(entered)", f"{f['entered']:,}", "", "")
        for row in f["steps"]:
            table.add_row(
                row["step"], f"{row['through']:,}", f"{row['sends']:,}", f"{row['held_out']:,}"
            )
        console.print(table)
        ended = ", ".join(f"{k}: {v:,}" for k, v in f["ended"].items()) or "nobody"
        conversion = "-" if f["conversion"] is None else f"{f['conversion']:.1%}"
        console.print(
            f"ended: {ended}; goals {f['goals']:,} ({conversion}); funnel drawn in {f['plot']}"
        )
