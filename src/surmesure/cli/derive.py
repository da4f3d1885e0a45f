"""``surmesure derive`` and ``surmesure export derived FILE``: RFM and CLV per person."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, progress, user_errors
from surmesure.derive.export import export_derived, format_of
from surmesure.derive.run import STEPS, DeriveResult, derive

HELP = """Compute RFM, customer lifetime value, engagement and satisfaction per identified person.

RFM: recency (days since the last purchase at --as-of), frequency (purchase orders), monetary
value (net of returns), quintile scores 1-5 and a named segment. CLV: BG/NBD expected purchases
over --horizon-days and probability of being still a customer, Gamma-Gamma value per purchase,
and the expected value over the horizon discounted at --discount-rate (annual). Engagement:
e-mail open and click rates and purchases per month over --window-days, days since the last
interaction, regularity of purchases. Satisfaction: latest NPS, CSAT share 4-5, CES mean.
Running again the same day replaces that day's results.
"""


def print_result(result: DeriveResult) -> None:
    counts = Table(title=f"derive (as of {result.as_of})", show_header=False)
    counts.add_column("what")
    counts.add_column("value", justify="right")
    counts.add_row("identified people", f"{result.people:,}")
    counts.add_row("buyers", f"{result.buyers:,}")
    counts.add_row("rows written", f"{result.rows_written:,}")
    if result.model is not None:
        f = result.model.bgnbd
        counts.add_row(
            "BG/NBD r, alpha (weeks), a, b", f"{f.r:.4g}, {f.alpha:.4g}, {f.a:.4g}, {f.b:.4g}"
        )
        spend = result.model.gamma_gamma
        if spend is not None:
            counts.add_row("Gamma-Gamma p, q, v", f"{spend.p:.4g}, {spend.q:.4g}, {spend.v:.4g}")
    overall = result.satisfaction
    scores = (("NPS", "nps", overall.nps), ("CSAT (4-5)", "csat", overall.csat))
    for label, key, value in (*scores, ("CES", "ces", overall.ces)):
        if value is not None:
            answers = overall.answers[key]
            counts.add_row(
                f"{label}, {answers:,} answers in {result.window_days} days", f"{value:.3g}"
            )
    counts.add_row("seconds", f"{sum(result.seconds.values()):.2f}")
    console.print(counts)
    segments = Table(title="RFM segments")
    segments.add_column("segment")
    segments.add_column("people", justify="right")
    for name, count in result.segments.items():
        segments.add_row(name, f"{count:,}")
    console.print(segments)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")


def register(app: typer.Typer) -> None:
    @app.command(
        "derive",
        help=HELP,
        short_help="Compute RFM, CLV, engagement and satisfaction for every person.",
    )
    @user_errors
    def derive_command(
        as_of: datetime | None = typer.Option(
            None, "--as-of", formats=["%Y-%m-%d"], help="Reference date (default: today, UTC)."
        ),
        horizon_days: int = typer.Option(
            365, "--horizon-days", help="Days ahead for expected purchases and value."
        ),
        discount_rate: float = typer.Option(
            0.1, "--discount-rate", help="Annual discount rate of the expected value."
        ),
        window_days: int = typer.Option(
            90, "--window-days", help="Days of e-mail rates, purchase rate and survey scores."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        store = get_store()
        try:
            with progress(quiet=as_json) as bar:
                task = bar.add_task("deriving RFM and CLV", total=len(STEPS))

                def on_step(step: str) -> None:
                    bar.update(task, advance=1, description=f"deriving: {step} done")

                result = derive(
                    store,
                    as_of=as_of.date() if as_of else None,
                    horizon_days=horizon_days,
                    discount_rate=discount_rate,
                    window_days=window_days,
                    on_step=on_step,
                )
        finally:
            store.dispose()
        if as_json:
            emit_json(result.model_dump(mode="json"))
        else:
            print_result(result)

    export = typer.Typer(help="Export data from the store.", no_args_is_help=True)
    app.add_typer(export, name="export")

    @export.command("derived")
    @user_errors
    def export_derived_command(
        file: Path = typer.Argument(..., help="Output file: .parquet or .csv."),
        as_json: bool = JsonOption,
    ) -> None:
        """One row per person with its customer id and every derived metric (latest run)."""
        format_of(file)
        store = get_store()
        try:
            rows = export_derived(store, file)
        finally:
            store.dispose()
        if as_json:
            emit_json({"file": str(file), "rows": rows})
        else:
            console.print(f"wrote {rows:,} people to {file}")
