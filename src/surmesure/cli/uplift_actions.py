"""``surmesure uplift actions``: the next best action per person, learned from a multi-arm test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.cli.uplift_format import interval_json, interval_text
from surmesure.errors import InvalidInput
from surmesure.learn.uplift import Action
from surmesure.learn.uplift.action_report import ActionReport, fit_actions
from surmesure.learn.uplift.data import ArmsData, read_arms_data
from surmesure.learn.uplift.saved import ActionModel, features_of

HELP = (
    "Learn, from a past experiment with one arm per action and a control arm, which action "
    "(or nothing) earns each person the most: highest predicted uplift x value - cost. Fitted "
    "on half (stratified by arm), judged on the other half against giving one action to "
    "everyone, with 95% bootstrap intervals; prints a few people's choices with the arithmetic."
)


def parse_actions(arms: str, values: str, costs: str) -> list[Action]:
    """``"a,b"``, ``"1,2"``, ``"0.1,0.2"`` -> actions; one value or cost applies to every arm."""
    names = [a.strip() for a in arms.split(",") if a.strip()]
    numbers = []
    for option, text in (("--value", values), ("--cost", costs)):
        try:
            parsed = [float(v) for v in text.split(",")]
        except ValueError as exc:
            raise InvalidInput(
                f"{option} {text!r} is not a list of numbers.", field=option[2:], hint="e.g. 1,2"
            ) from exc
        if len(parsed) == 1:
            parsed *= len(names)
        if len(parsed) != len(names):
            raise InvalidInput(
                f"{option} gives {len(parsed)} numbers for {len(names)} arms.",
                field=option[2:],
                hint="give one number, or one per arm in --arms order",
            )
        numbers.append(parsed)
    return [Action(n, v, c) for n, v, c in zip(names, *numbers, strict=True)]


def _payload(report: ActionReport, examples: int) -> dict[str, Any]:
    return {
        "learner": report.learner,
        "n_train": report.n_train,
        "n_test": report.n_test,
        "actions": [
            {"name": a.name, "value": a.value, "cost": a.cost} for a in report.choice.actions
        ],
        "shares": report.shares,
        "policy": interval_json(report.policy),
        "everyone": {name: interval_json(i) for name, i in report.everyone.items()},
        "examples": [
            {
                "action": report.choice.name(i),
                "explanation": report.choice.explain(i, report.uplift),
            }
            for i in range(min(examples, report.n_test))
        ],
    }


def _saved(name: str | None, version: int | None) -> dict[str, Any] | None:
    return None if name is None else {"model": name, "version": version}


def check_model_name(name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
        raise InvalidInput(
            f"--save {name!r} is not a model name.",
            field="save",
            hint="lower-case letters, digits and _, starting with a letter",
        )


def _print(report: ActionReport, examples: int) -> None:
    console.print(
        f"{report.learner.upper()}-learner per action; trained on {report.n_train:,}, judged on "
        f"{report.n_test:,} held-out people."
    )
    table = Table(title="Expected incremental value for the whole experiment (95% bootstrap)")
    table.add_column("policy")
    table.add_column("given", justify="right")
    table.add_column("value", justify="right")
    chosen = ", ".join(f"{name} {share:.0%}" for name, share in report.shares.items())
    table.add_row("next best action", chosen, interval_text(report.policy))
    for name, interval in report.everyone.items():
        table.add_row(f"{name} to everyone", "100%", interval_text(interval))
    table.add_row("do nothing", "100%", "0.00")
    console.print(table)
    for i in range(min(examples, report.n_test)):
        console.print(f"held-out person {i}: {report.choice.explain(i, report.uplift)}")


def save_model(name: str, data: ArmsData, report: ActionReport) -> int:
    """Keep the report's fitted models under ``name`` in the store; the new version."""
    from surmesure.clock import utcnow
    from surmesure.decide import action_models

    model = ActionModel(
        name=name,
        version=0,
        actions=report.choice.actions,
        features=features_of(data.features, data.feature_names),
        models=report.models,
        learner=report.learner,
    )
    figures = {"n_train": report.n_train, "policy": interval_json(report.policy)}
    store = get_store()
    try:
        with store.begin() as conn:
            return action_models.save(conn, model, utcnow(), figures)
    finally:
        store.dispose()


def register(app: typer.Typer) -> None:
    @app.command("actions", help=HELP)
    @user_errors
    def actions_command(
        file: Path = typer.Argument(..., help="CSV or Parquet file, one row per person."),
        treatment_column: str = typer.Option(
            ..., "--treatment-column", help="Column naming each person's arm."
        ),
        arms: str = typer.Option(..., "--arms", help="Comma-separated arms, one per action."),
        control: str = typer.Option(..., "--control", help="Value of the control arm."),
        outcome: str = typer.Option(..., "--outcome", help="Numeric outcome column."),
        value: str = typer.Option("1", "--value", help="Money per unit of outcome (or per arm)."),
        cost: str = typer.Option("0.1", "--cost", help="Cost per person given an action."),
        features: str | None = typer.Option(
            None, "--features", help="Comma-separated feature columns (default: all others)."
        ),
        learner: str = typer.Option("x", "--learner", help="x, t, dr or s."),
        seed: int = typer.Option(0, "--seed", help="Seed of the split, models and bootstrap."),
        examples: int = typer.Option(3, "--examples", help="Held-out people to explain."),
        save: str | None = typer.Option(
            None,
            "--save",
            help="Keep the fitted models in the store under this name (a new version each "
            "time), for templates whose next_best_action names it.",
        ),
        as_json: bool = JsonOption,
    ) -> None:
        if save is not None:
            check_model_name(save)
        actions = parse_actions(arms, value, cost)
        names = [f.strip() for f in features.split(",") if f.strip()] if features else None
        data = read_arms_data(
            file, treatment_column, [a.name for a in actions], control, outcome, names
        )
        report = fit_actions(data, actions, learner, seed)
        version = save_model(save, data, report) if save is not None else None
        if as_json:
            emit_json({**_payload(report, examples), "saved": _saved(save, version)})
            return
        _print(report, examples)
        if save is not None:
            console.print(f"Saved as next-best-action model {save!r} version {version}.")
