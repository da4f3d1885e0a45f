"""``surmesure derive``, ``surmesure kpi``, ``surmesure report`` and ``surmesure export derived
FILE``: metrics per person, KPIs of the base, and the report that pictures them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, progress, user_errors
from surmesure.derive.export import export_derived, format_of
from surmesure.derive.kpi import Kpis, kpis
from surmesure.derive.money import money
from surmesure.derive.report import write_report
from surmesure.derive.run import STEPS, DeriveResult, derive
from surmesure.derive.segment_satisfaction import FEW
from surmesure.ops.runs import derived_summary, recorded
from surmesure.protect.audit import cli_actor

HELP = """Compute RFM, customer lifetime value, engagement and satisfaction per identified person.

RFM: recency (days since the last purchase at --as-of), frequency (purchase orders), monetary
value (net of returns), quintile scores 1-5 and a named segment. CLV: BG/NBD expected purchases
over --horizon-days and probability of being still a customer, Gamma-Gamma value per purchase,
and the expected value over the horizon discounted at --discount-rate (annual). Engagement:
e-mail open and click rates and purchases per month over --window-days, days since the last
interaction, regularity of purchases, category breadth, up-sell potential (share of RFM
segment peers with a bigger average basket), and relational, transactional and overall
engagement scores 0-100 (weighted percentile ranks of the components). Satisfaction: latest
NPS, CSAT share 4-5, CES mean. Propensity: the calibrated probability of a purchase in the next
30 and 90 days (p_purchase_30d, p_purchase_90d), validated against a logistic regression on RFM.
Channel appetence: response rate per channel (e-mail, SMS, phone, paper, web) shrunk toward the
channel's population rate, and the best channel. Preferred store (most purchases, else the home
store) and its distance from home; top 3 categories by share of spend and top product.
Running again the same day replaces that day's results.
"""


def print_result(result: DeriveResult) -> None:
    counts = Table(title=f"derive (as of {result.as_of})", show_header=False)
    counts.add_column("what")
    counts.add_column("value", justify="right")
    counts.add_row("identified people", f"{result.people:,}")
    if result.objectors:
        counts.add_row("left out: object to profiling", f"{result.objectors:,}")
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
    for chance in result.propensity:
        v = chance.validation
        shown = chance.model.replace("_", " ")
        if v is not None:
            shown += (
                f", AUC {v.model.auc:.3f} and Brier {v.model.brier:.4f} (logistic RFM "
                f"{v.logistic_rfm.auc:.3f}, {v.logistic_rfm.brier:.4f})"
            )
        counts.add_row(f"P(purchase in {chance.days} days)", shown)
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
    channels = Table(title="channel appetence (Beta prior per channel)")
    for column in ("channel", "people", "mean rate", "prior strength a + b"):
        channels.add_column(column, justify="left" if column == "channel" else "right")
    for prior in result.channels:
        if prior.people:
            channels.add_row(
                prior.channel, f"{prior.people:,}", f"{prior.mean_rate:.1%}",
                f"{prior.a + prior.b:.3g}",
            )  # fmt: skip
    console.print(channels)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")


def print_kpis(k: Kpis) -> None:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1%}"

    def num(x: float | None, digits: int = 2) -> str:
        return "n/a" if x is None else f"{x:,.{digits}f}"

    s = k.satisfaction
    table = Table(title=f"KPIs (as of {k.as_of})", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, value in (
        ("buyers", f"{k.buyers:,}"),
        ("purchase orders", f"{k.purchase_orders:,}"),
        ("net revenue", money(k.revenue, k.currency)),
        ("revenue per customer", money(k.revenue_per_customer, k.currency)),
        ("average basket", money(k.average_basket, k.currency)),
        ("repeat purchase rate", pct(k.repeat_purchase_rate)),
        ("share of revenue from the top 10 %", pct(k.top_decile_share)),
        (f"churn at {k.churn_horizon_days} days ({k.churned:,} of {k.churn_base:,})",
         pct(k.churn_rate)),
        (f"NPS, {s.answers.get('nps', 0):,} answers in {k.window_days} days", num(s.nps, 0)),
        ("CSAT (share of 4-5)", pct(s.csat)),
        ("CES (mean)", num(s.ces)),
    ):  # fmt: skip
        table.add_row(label, value)
    console.print(table)
    if k.as_of_note:
        console.print(f"[yellow]note:[/] {k.as_of_note}")
    if k.cohorts:
        width = min(13, max(len(c.retention) for c in k.cohorts))
        cohorts = Table(title="cohort retention (months since the first purchase)")
        cohorts.add_column("cohort")
        cohorts.add_column("buyers", justify="right")
        for m in range(1, width):
            cohorts.add_column(f"+{m}", justify="right")
        for c in k.cohorts[-12:]:
            cells = [f"{x:.0%}" for x in c.retention[1:width]]
            cohorts.add_row(c.month, f"{c.customers:,}", *cells)
        console.print(cohorts)
    if k.satisfaction_by_segment:
        segments = Table(title=f"Satisfaction by RFM segment (last {k.window_days} days)")
        for column in ("segment", "NPS", "answers", "CSAT", "answers", "CES", "answers"):
            segments.add_column(column, justify="left" if column == "segment" else "right")
        for g in k.satisfaction_by_segment:
            margin = "" if g.nps_margin is None else f" ± {g.nps_margin:.0f}"
            segments.add_row(
                g.segment + (" [yellow](few answers)[/]" if g.small else ""),
                "n/a" if g.nps is None else f"{g.nps:.0f}{margin}",
                f"{g.nps_answers:,}",
                pct(g.csat),
                f"{g.csat_answers:,}",
                num(g.ces),
                f"{g.ces_answers:,}",
            )
        console.print(segments)
        if any(g.small for g in k.satisfaction_by_segment):
            console.print(
                f"[yellow]note:[/] segments marked (few answers) rest on fewer than {FEW} "
                "answers: do not compare them."
            )


def register(app: typer.Typer) -> None:
    @app.command(
        "derive",
        help=HELP,
        short_help="Compute RFM, CLV, engagement and satisfaction for every person.",
    )
    @user_errors
    def derive_command(
        as_of: datetime | None = typer.Option(
            None,
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Reference date (default: today, UTC; the day after the latest order or event "
            "when the data ends before today).",
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
            with recorded(store, "derive", cli_actor()) as run, progress(quiet=as_json) as bar:
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
                run.summary = derived_summary(result)
        finally:
            store.dispose()
        if as_json:
            emit_json(result.model_dump(mode="json"))
        else:
            print_result(result)

    @app.command("kpi")
    @user_errors
    def kpi_command(
        as_of: datetime | None = typer.Option(
            None,
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Reference date (default: today, UTC; the day after the latest order or event "
            "when the data ends before today).",
        ),
        horizon_days: int = typer.Option(
            90, "--horizon-days", help="Churn horizon: no purchase in these last days."
        ),
        window_days: int = typer.Option(
            365, "--window-days", help="Days of survey answers for NPS, CSAT and CES."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """Retention and value KPIs: cohort retention, repeat rate, average basket, revenue per
        customer, top-decile share, churn at a horizon, NPS (overall, by RFM segment, by
        month), CSAT and CES."""
        store = get_store()
        try:
            result = kpis(
                store,
                as_of=as_of.date() if as_of else None,
                horizon_days=horizon_days,
                window_days=window_days,
            )
        finally:
            store.dispose()
        if as_json:
            emit_json(result.model_dump(mode="json"))
        else:
            print_kpis(result)

    @app.command("report")
    @user_errors
    def report_command(
        out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write."),
        horizon_days: int = typer.Option(90, "--horizon-days", help="Churn horizon in days."),
        window_days: int = typer.Option(
            365, "--window-days", help="Days of survey answers for NPS, CSAT and CES."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """A self-contained HTML page of the latest derive run: headline KPIs, RFM grid, CLV
        distribution, cohort retention, NPS by month, channel appetence by RFM segment."""
        store = get_store()
        try:
            with progress(quiet=as_json) as bar:
                bar.add_task("drawing the report", total=None)
                result = write_report(
                    store, out, horizon_days=horizon_days, window_days=window_days
                )
        finally:
            store.dispose()
        if as_json:
            emit_json(result.model_dump(mode="json", exclude={"kpis"}))
        else:
            console.print(
                f"wrote {out} ({result.bytes / 1024:,.0f} KiB, {len(result.figures)} figures, "
                f"{result.people:,} people as of {result.as_of})"
            )

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
