"""The tables `campaign results` prints: the groups, then the increments with intervals."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def groups_table(out: dict[str, Any]) -> Table:
    table = Table(title=f"{escape(out['campaign'])}: {out['attribution_days']}-day window")
    for column in ("group", "channel", "people", "sent", "delivered", "opened", "clicked"):
        table.add_column(column, justify="left" if column in ("group", "channel") else "right")
    for column in ("converted", "conv. rate", "revenue/person", "cost"):
        table.add_column(column, justify="right")
    for g in out["groups"]:
        counts = [f"{g[k]:,}" for k in ("people", "sent", "delivered", "opened", "clicked")]
        table.add_row(
            g["arm"],
            g["channel"],
            *counts,
            f"{g['converted']:,}",
            _share(g["conversion_rate"]),
            _money(g["revenue_per_person"]),
            _money(g["cost"]),
        )
    return table


def _interval(lift: dict[str, Any], scale: float, unit: str) -> str:
    if lift["estimate"] is None:
        return f"- ({escape(lift.get('reason', 'undefined'))})"
    low, high = (lift[k] for k in ("ci_lower", "ci_upper"))
    bounds = "" if low is None else f" [{low * scale:+,.2f}, {high * scale:+,.2f}]"
    return f"{lift['estimate'] * scale:+,.2f}{unit}{bounds}"


def _p(lift: dict[str, Any]) -> str:
    p = lift.get("p_value_adjusted", lift["p_value"])
    return "-" if p is None else f"{p:.3g}"


def lift_table(rows: list[dict[str, Any]], key: str, title: str) -> Table:
    table = Table(title=f"incremental, {title} (95% intervals)")
    for column in (key, "treated", "control", "conversion", "p", "revenue/person", "p"):
        table.add_column(column, justify="left" if column == key else "right")
    table.add_column("incr. revenue", justify="right")
    table.add_column("ROI", justify="right")
    for row in rows:
        table.add_row(
            escape(str(row[key])),
            f"{row['treated']:,}",
            f"{row['control']:,}",
            _interval(row["conversion"], 100.0, " pts"),
            _p(row["conversion"]),
            _interval(row["revenue_per_person"], 1.0, ""),
            _p(row["revenue_per_person"]),
            _interval(row["incremental_revenue"], 1.0, ""),
            _interval(row["roi"], 100.0, "%") if row["cost"] else "- (no cost)",
        )
    return table


def video_table(video: dict[str, Any]) -> Table:
    """The campaign's films: pages opened, views, quarters, completion and clicks."""
    table = Table(title="video")
    table.add_column("")
    table.add_column("people", justify="right")
    views = video["views"]
    rows = [("pages opened", video["pages_opened"]), ("views (started)", views)]
    rows += [(f"played {q}%", n) for q, n in video["quarters"].items()]
    rows += [("completed", video["completed"]), ("clicked a button", video["clicked"])]
    for label, n in rows:
        table.add_row(label, f"{n:,}")
    table.add_row("completion rate", _share(video["completion_rate"]))
    return table
