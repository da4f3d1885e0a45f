"""``surmesure experiment analyze``: read a past experiment from a file and report its results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, user_errors
from surmesure.learn.analysis import Breakdown, ExperimentResult, analyze, as_dict, breakdown
from surmesure.learn.plots import LiftBar, lift_plot
from surmesure.learn.source import ExperimentData, read_experiment


def _num(value: float, digits: int = 4) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    return ("+inf" if value > 0 else "-inf") if math.isinf(value) else f"{value:+.1%}"


def _p(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3g}"


def _variant_table(result: ExperimentResult, title: str, adjusted: bool = False) -> Table:
    table = Table(title=title)
    fixed = all(v.comparison is None or v.comparison.method == "fixed" for v in result.variants)
    relative_header = "rel. lift [Fieller CI]" if fixed else "rel. lift [CI]"
    columns = ["variant", "n", "mean", "abs. lift [CI]", relative_header, "p"]
    columns += ["p (BH)"] if adjusted else []
    columns += ["P(beat)"]
    for col in columns:
        table.add_column(col, justify="left" if col == "variant" else "right")
    for v in result.variants:
        c = v.comparison
        if c is None:
            blanks = [""] * (len(columns) - 3)
            table.add_row(f"{escape(v.variant)} (control)", f"{v.n:,}", _num(v.mean), *blanks)
            continue
        # Fieller's interval agrees with the test; the sequential one has its own width
        a, r = c.absolute, c.relative_fieller or c.relative
        cells = [
            escape(v.variant),
            f"{v.n:,}",
            _num(v.mean),
            f"{_num(a.estimate)}\n[{_num(a.ci_lower)}, {_num(a.ci_upper)}]",
            f"{_pct(r.estimate)}\n[{_pct(r.ci_lower)}, {_pct(r.ci_upper)}]",
            _p(a.p_value),
        ]
        cells += [_p(v.p_value_adjusted)] if adjusted else []
        chance = v.bayes.chance_to_beat if v.bayes else math.nan
        cells += ["-" if math.isnan(chance) else f"{chance:.1%}"]
        if c.reason:
            cells[0] += f"\n[yellow]{escape(c.reason)}[/]"
        table.add_row(*cells)
    return table


def _srm_line(result: ExperimentResult) -> str:
    srm = result.srm
    if srm.reason:
        return f"sample ratio: {escape(srm.reason)}"
    verdict = "[bold red]MISMATCH[/]" if srm.mismatch else "[green]ok[/]"
    return f"sample ratio: {verdict} (chi² {srm.chi2:.2f}, p = {_p(srm.p_value)})"


def _print(data: ExperimentData, result: ExperimentResult, by: Breakdown | None) -> None:
    method = (
        "sequential"
        if any(v.comparison and v.comparison.method == "sequential" for v in result.variants)
        else "fixed horizon"
    )
    title = escape(f"{data.metric} ({data.kind}, {method})")
    console.print(_variant_table(result, title))
    console.print(_srm_line(result))
    if result.srm.mismatch:
        console.print(
            "[red]The split is off: check assignment and logging before reading lifts.[/]"
        )
    if data.dropped_rows:
        console.print(f"{data.dropped_rows:,} rows without a value were left out.")
    if by is None:
        return
    for seg in by.segments:
        console.print(_variant_table(seg, escape(f"{by.column} = {seg.segment}"), adjusted=True))
        console.print(_srm_line(seg))


def _payload(data: ExperimentData, result: ExperimentResult, by: Breakdown | None) -> Any:
    out: dict[str, Any] = {
        "metric": data.metric,
        "kind": data.kind,
        "dropped_rows": data.dropped_rows,
        **as_dict(result),
    }
    if by is not None:
        out["breakdown"] = as_dict(by)
    return out


def _bars(result: ExperimentResult, by: Breakdown | None) -> list[LiftBar]:
    """Absolute lift with its interval per variant, per segment when broken down."""
    results = [result] if by is None else list(by.segments)
    bars = []
    for r in results:
        for v in r.variants:
            if v.comparison is None:
                continue
            a = v.comparison.absolute
            label = v.variant if r.segment is None else f"{r.segment} / {v.variant}"
            bars.append(LiftBar(label, a.estimate, a.ci_lower, a.ci_upper))
    return bars


HELP = (
    "Analyze a past experiment from a CSV or Parquet file (one row per person): per variant n, "
    "mean, absolute and relative lift with intervals (the relative one by Fieller's method, so "
    "it excludes 0 exactly when p < alpha), p-value, chance to beat control, "
    "sample-ratio check, and with --by a per-segment breakdown with BH-adjusted p-values; "
    "--plot draws the lifts with their intervals."
)


def register(app: typer.Typer) -> None:
    exp_app = typer.Typer(help="Experiments: define, assign, analyze and read results.")
    app.add_typer(exp_app, name="experiment")

    @exp_app.command("analyze", help=HELP)
    @user_errors
    def analyze_command(
        file: Path = typer.Argument(..., help="CSV or Parquet file, one row per person."),
        variant_column: str = typer.Option(..., "--variant-column", help="Column of variants."),
        control: str = typer.Option(..., "--control", help="Value of the control variant."),
        metric: str = typer.Option(..., "--metric", help="Numeric outcome column."),
        covariate: str | None = typer.Option(
            None, "--covariate", help="Pre-period column for CUPED variance reduction."
        ),
        by: str | None = typer.Option(None, "--by", help="Break results down by this column."),
        alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
        sequential: bool = typer.Option(
            False, "--sequential", help="Always-valid intervals, safe to read every day."
        ),
        plot: Path | None = typer.Option(
            None, "--plot", help="Write the lift with its interval per segment (PNG or SVG)."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        data = read_experiment(file, variant_column, metric, covariate, by)
        result = analyze(data.variants, control, alpha=alpha, sequential=sequential)
        split = None
        if by is not None:
            split = breakdown(by, data.segments, control, alpha=alpha, sequential=sequential)
        if plot is not None:
            title = f"{data.metric}: lift against {control}" + (f" by {by}" if by else "")
            lift_plot(_bars(result, split), plot, title=title)
        if as_json:
            emit_json(_payload(data, result, split))
        else:
            _print(data, result, split)
            if plot is not None:
                console.print(f"Lift plot written to {plot}")
