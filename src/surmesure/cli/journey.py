"""``surmesure journey``: validate, publish, pause, resume, archive, follow and simulate
journeys, and run their worker."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import (
    JsonOption,
    console,
    emit_json,
    emit_valid,
    emit_version,
    get_store,
    user_errors,
)
from surmesure.clock import utcnow
from surmesure.errors import NotFound
from surmesure.journeys import published, service
from surmesure.journeys.document import JourneyDefinition

HELP = """Journeys: validate, publish, follow and simulate them; run their worker.

A journey is a multi-step path people go through, moved by time and by what they do. A
document (YAML or JSON) says how people enter (an event, a segment, a schedule, a date),
the steps (send, wait, wait for an event, branch, split, update a trait, webhook, exit), the
goal and the exit events. Publishing makes it the version new people enter; people in flight
stay on theirs. The worker runs due steps; collected events move people at once.
"""

EXAMPLES = Path(__file__).resolve().parents[1] / "journeys" / "examples"


def _definition(store: Any, name_or_file: str) -> JourneyDefinition:
    """A journey by file, by published name, or one of the shipped examples."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml", ".json"):
        return published.load_file(path)
    try:
        with store.connect() as conn:
            row = published.head(conn, name_or_file)
            return published.version_of(conn, name_or_file, int(row.version))
    except NotFound:
        example = EXAMPLES / f"{name_or_file}.yaml"
        if example.exists():
            return published.load_file(example)
        raise


def register(app: typer.Typer) -> None:
    journey = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(journey, name="journey")

    @journey.command("validate", help="Check a journey file against what exists; save nothing.")
    @user_errors
    def validate_command(file: Path, as_json: bool = JsonOption) -> None:
        emit_valid(service.validate(get_store(), file).name, as_json)

    @journey.command("publish", help="Make a journey file the version new people enter.")
    @user_errors
    def publish_command(file: Path, as_json: bool = JsonOption) -> None:
        done = service.publish_file(get_store(), file, utcnow())
        emit_version(done.name, done.version, done.changed, as_json, "published")

    def _status_change(action: str) -> None:
        @journey.command(action, help=f"{action.capitalize()} a journey (by file or name).")
        @user_errors
        def command(file_or_name: str, as_json: bool = JsonOption) -> None:
            out = service.change(get_store(), file_or_name, action, utcnow())
            if as_json:
                emit_json(out)
            else:
                console.print(f"{out['name']}: {out['before']} -> [bold]{out['status']}[/]")

    for action in ("pause", "resume", "archive"):
        _status_change(action)

    @journey.command("migrate", help="Move people in flight to the version in force.")
    @user_errors
    def migrate_command(
        name: str,
        from_version: int | None = typer.Option(
            None, "--from", help="Only the people on this version (default: every older one)."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        out = service.migrate(get_store(), name, utcnow(), from_version)
        if as_json:
            emit_json(out)
            return
        for version, n in out["moved"].items():
            console.print(
                f"version {version} -> {out['version']}: {n:,} moved, "
                f"{out['stayed'][version]:,} stayed (their step is gone or changed kind)"
            )
        if not out["moved"]:
            console.print(f"nobody in flight on an older version of {name}")

    @journey.command("status", help="People per step, entered, ended by reason, goals, splits.")
    @user_errors
    def status_command(name: str, as_json: bool = JsonOption) -> None:
        out = service.status(get_store(), name)
        if as_json:
            emit_json(out)
            return
        console.print(
            f"[bold]{name}[/] version {out['version']} ({out['status']}): "
            f"{out['entered']:,} entered, {out['running']:,} in flight, {out['goals']:,} goals"
        )
        table = Table(title="steps")
        for column in ("step", "now", "went through"):
            table.add_column(column, justify="left" if column == "step" else "right")
        for row in out["steps"]:
            table.add_row(row["step"], f"{row['now']:,}", f"{row['through']:,}")
        console.print(table)
        if out["ended"]:
            ended = Table(title="ended")
            ended.add_column("reason")
            ended.add_column("people", justify="right")
            for reason, n in out["ended"].items():
                ended.add_row(escape(str(reason)), f"{n:,}")
            console.print(ended)
        for step, paths in out["splits"].items():
            split = Table(title=f"split {step}")
            for column in ("path", "people", "goals", "conversion", "lift vs control", "p"):
                split.add_column(column, justify="right")
            for p in paths:
                lift = p.get("lift")
                split.add_row(
                    f"{p['path']}{' (control)' if p['control'] else ''}",
                    f"{p['people']:,}",
                    f"{p['goals']:,}",
                    "-" if p["conversion"] is None else f"{p['conversion']:.1%}",
                    "-" if lift is None else f"{lift:+.1%}",
                    "-" if p.get("p_value") is None else f"{p['p_value']:.3f}",
                )
            console.print(split)

    @journey.command("person", help="Where one person is in a journey, what happened, and why.")
    @user_errors
    def person_command(name: str, person: str, as_json: bool = JsonOption) -> None:
        out = service.person(get_store(), name, person)
        if as_json:
            emit_json(out)
            return
        for entry in out["entries"]:
            where = f"on {entry['step']}" if entry["status"] == "running" else "done"
            why = f" ({entry['reason']})" if entry["reason"] else ""
            due = f", until {entry['due_at']:%Y-%m-%d %H:%M}" if entry["due_at"] else ""
            console.print(f"entry {entry['entry']} (version {entry['version']}): {where}{why}{due}")
        for h in out["history"]:
            console.print(
                f"  {h['at']:%Y-%m-%d %H:%M}  #{h['entry']} {h['step']}: {escape(h['what'])}"
            )
        if not out["entries"]:
            console.print(f"person {out['person_id']} never entered {name}")

    @journey.command("worker", help="Run due steps and planned sends (every --period seconds).")
    @user_errors
    def worker_command(
        once: bool = typer.Option(False, "--once", help="One round, then stop."),
        period: float = typer.Option(5.0, "--period", help="Seconds between rounds."),
        send: bool = typer.Option(True, "--send/--no-send", help="Hand planned messages over."),
        as_json: bool = JsonOption,
    ) -> None:
        from surmesure.config import get_settings
        from surmesure.deliver.channels import configured
        from surmesure.journeys.published import Versions
        from surmesure.journeys.worker import run_once

        store = get_store()
        settings = get_settings()
        channels = configured(settings) if send else None
        versions = Versions()
        while True:
            done = run_once(
                store, utcnow(), versions=versions, channels=channels, settings=settings
            )
            summary = {
                "entered": done.entered,
                "transitions": done.transitions,
                "messages": done.messages,
                "ended": done.ended,
                "sent": done.sent,
            }
            if as_json:
                emit_json(summary)
            elif done.transitions or done.sent:
                console.print(
                    f"{done.entered:,} entered, {done.transitions:,} steps, "
                    f"{done.messages:,} messages planned, sent {done.sent}"
                )
            if once:
                return
            time.sleep(period)

    @journey.command("simulate", help="Replay recent history through a journey, compressed.")
    @user_errors
    def simulate_command(
        name: str,
        days: int = typer.Option(30, "--days", min=1, max=3650, help="Days to replay."),
        start: datetime | None = typer.Option(
            None, "--start", help="First day (default: the last --days of events)."
        ),
        plot: Path | None = typer.Option(None, "--plot", help="Write the funnel as a PNG."),
        as_json: bool = JsonOption,
    ) -> None:
        from surmesure.journeys.funnel import plot as draw
        from surmesure.journeys.simulate import simulate

        store = get_store()
        definition = _definition(store, name)
        funnel = simulate(store, definition, days, start=start)
        order = [s.id for s in definition.steps]
        out = funnel.document(order)
        if plot is not None:
            out["plot"] = str(draw(funnel, order, plot))
        if as_json:
            emit_json(out)
            return
        span = funnel.end - funnel.start
        console.print(
            f"[bold]{definition.name}[/] over {span / timedelta(days=1):.0f} days "
            f"({funnel.start:%Y-%m-%d} to {funnel.end:%Y-%m-%d}): {funnel.entered:,} entries "
            f"of {funnel.people:,} people"
        )
        table = Table(title="funnel")
        for column in ("step", "went through", "sends", "held out"):
            table.add_column(column, justify="left" if column == "step" else "right")
        table.add_row("(entered)", f"{funnel.entered:,}", "", "")
        for row in out["steps"]:
            table.add_row(
                row["step"], f"{row['through']:,}", f"{row['sends']:,}", f"{row['held_out']:,}"
            )
        console.print(table)
        ended = ", ".join(f"{k}: {v:,}" for k, v in out["ended"].items()) or "nobody"
        console.print(f"ended: {ended}; still in flight: {funnel.running:,}")
        if out["conversion"] is not None:
            console.print(f"goals: {out['goals']:,} ({out['conversion']:.1%} of entries)")
        rate = out["transitions_per_second"]
        console.print(
            f"{funnel.transitions:,} steps in {funnel.seconds:.2f} s"
            + (f" ({rate:,} steps/s)" if rate else "")
        )
        if plot is not None:
            console.print(f"funnel drawn in {plot}")
