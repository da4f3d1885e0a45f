"""``surmesure uplift fit``: learn who is moved by a treatment from a past experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli import uplift_actions
from surmesure.cli.common import JsonOption, console, emit_json, user_errors
from surmesure.cli.uplift_format import interval_json, interval_text, money
from surmesure.errors import InvalidInput
from surmesure.learn.plots import qini_plot
from surmesure.learn.uplift import Targeting, UpliftReport, fit_and_evaluate
from surmesure.learn.uplift.data import UpliftData, read_uplift_data

HELP = (
    "Fit an uplift model on half of a past experiment (CSV or Parquet, one row per person), "
    "stratified by treatment, and report on the other half: Qini coefficient, AUUC, and the "
    "expected incremental profit of treating only where predicted uplift x value > cost, "
    "against treating everyone and no one, and the value of treating the top 10/20/50% by "
    "predicted uplift against treating everyone and a random share, with bootstrap intervals."
)


def _targeting_json(t: Targeting) -> dict[str, Any]:
    return {
        "population": t.population,
        "bootstrap_rounds": t.rounds,
        "everyone": interval_json(t.everyone),
        "top": [
            {
                "share": r.share,
                "people": r.people,
                "policy": interval_json(r.policy),
                "random": interval_json(r.random),
                "gain_over_random": interval_json(r.gain_over_random),
            }
            for r in t.rows
        ],
        "reason": t.reason,
    }


def _targeting_table(t: Targeting) -> Table:
    table = Table(
        title=f"Treating the top share by predicted uplift, for {t.population:,} people "
        f"(95% bootstrap intervals, {t.rounds} rounds)"
    )
    for col in ("treated", "people", "top by uplift", "random", "top - random"):
        table.add_column(col, justify="right")
    for r in t.rows:
        table.add_row(
            f"{r.share:.0%}",
            f"{r.people:,}",
            interval_text(r.policy),
            interval_text(r.random),
            interval_text(r.gain_over_random),
        )
    table.add_row(
        "100%", f"{t.population:,}", interval_text(t.everyone), interval_text(t.everyone), "0"
    )
    return table


def _payload(data: UpliftData, report: UpliftReport, plot: Path | None) -> dict[str, Any]:
    s, p = report.scores, report.profit
    return {
        "learner": report.learner,
        "features": list(data.features),
        "outcome_kind": "binary" if data.binary else "numeric",
        "n_train": report.n_train,
        "n_test": report.n_test,
        "dropped_rows": data.dropped_rows,
        "qini_coefficient": s.qini_coefficient,
        "auuc": s.auuc,
        "auuc_gain": s.auuc_gain,
        "reason": s.reason,
        "mean_predicted_uplift": report.mean_uplift,
        "policy": {
            "value": p.value,
            "cost": p.cost,
            "population": p.population,
            "targeted_share": p.targeted_share,
            "profit_policy": p.policy,
            "profit_policy_std_error": p.std_error,
            "profit_treat_all": p.treat_all,
            "profit_treat_none": p.treat_none,
            "reason": p.reason,
        },
        "targeting": _targeting_json(report.targeting),
        "plot": None if plot is None else str(plot),
    }


def _print(data: UpliftData, report: UpliftReport, plot: Path | None) -> None:
    s, p = report.scores, report.profit
    console.print(
        f"{report.learner.upper()}-learner on {len(data.features)} features "
        f"({', '.join(data.features)}); trained on {report.n_train:,}, judged on "
        f"{report.n_test:,} held-out people."
    )
    scores = Table(title="Ranking quality, out of sample")
    for col in ("Qini coefficient", "AUUC", "AUUC - random", "mean predicted uplift"):
        scores.add_column(col, justify="right")
    scores.add_row(
        f"{s.qini_coefficient:.4f}",
        f"{s.auuc:.5f}",
        f"{s.auuc_gain:+.5f}",
        f"{report.mean_uplift:+.5f}",
    )
    console.print(scores)
    if s.reason:
        console.print(f"[yellow]{escape(s.reason)}[/]")
    table = Table(
        title=f"Expected incremental profit for {p.population:,} people "
        f"(value {p.value:g} per unit, cost {p.cost:g} per treated person)"
    )
    for col in ("policy", "treated", "profit"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    table.add_row(
        "uplift x value > cost",
        f"{p.targeted_share:.1%}",
        f"{money(p.policy)} ± {money(1.96 * p.std_error)}",
    )
    table.add_row("treat everyone", "100.0%", money(p.treat_all))
    table.add_row("treat no one", "0.0%", money(p.treat_none))
    console.print(table)
    if p.reason:
        console.print(f"[yellow]{escape(p.reason)}[/]")
    console.print(_targeting_table(report.targeting))
    if report.targeting.reason:
        console.print(f"[yellow]{escape(report.targeting.reason)}[/]")
    if plot is not None:
        console.print(f"Qini plot written to {plot}")


def register(app: typer.Typer) -> None:
    uplift_app = typer.Typer(help="Uplift: whom a treatment moves, and whom to treat.")
    app.add_typer(uplift_app, name="uplift")
    uplift_actions.register(uplift_app)

    @uplift_app.command("fit", help=HELP)
    @user_errors
    def fit_command(
        file: Path = typer.Argument(..., help="CSV or Parquet file, one row per person."),
        treatment_column: str = typer.Option(
            ..., "--treatment-column", help="Column naming each person's group."
        ),
        treatment: str = typer.Option(..., "--treatment", help="Value of the treated group."),
        control: str = typer.Option(..., "--control", help="Value of the control group."),
        outcome: str = typer.Option(..., "--outcome", help="Numeric outcome column."),
        value: float = typer.Option(1.0, "--value", help="Money one unit of outcome brings."),
        cost: float = typer.Option(0.1, "--cost", help="Cost of treating one person."),
        features: str | None = typer.Option(
            None,
            "--features",
            help="Comma-separated feature columns (default: every other column; leave out "
            "other outcomes measured after treatment).",
        ),
        learner: str = typer.Option("x", "--learner", help="x, t, dr or s."),
        seed: int = typer.Option(0, "--seed", help="Seed of the split and the models."),
        plot: Path | None = typer.Option(None, "--plot", help="Write the Qini plot (PNG/SVG)."),
        as_json: bool = JsonOption,
    ) -> None:
        names = [f.strip() for f in features.split(",") if f.strip()] if features else None
        if features is not None and not names:
            raise InvalidInput("--features names no column.", field="features", hint="e.g. a,b")
        data = read_uplift_data(file, treatment_column, treatment, control, outcome, names)
        report = fit_and_evaluate(
            data.x, data.y, data.treated, learner, value, cost, seed, data.binary
        )
        if plot is not None:
            qini_plot(
                {f"{learner.upper()}-learner": report.qini},
                plot,
                title=f"Qini curve: {outcome}, {treatment} vs {control} (held out)",
            )
        if as_json:
            emit_json(_payload(data, report, plot))
        else:
            _print(data, report, plot)
