"""``surmesure quarantine list|show|replay``: refused records, their reasons, and replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, progress, user_errors
from surmesure.collect import quarantine
from surmesure.collect.replay import ReplayResult, replay
from surmesure.protect import audit


def _print_summary(summary: dict[str, Any]) -> None:
    if not summary["total"]:
        console.print("The quarantine is empty for this selection.")
        return
    counts = Table(title=f"quarantined records: {summary['total']:,}")
    for column in ("kind", "field", "reason", "status", "count"):
        counts.add_column(column, justify="right" if column == "count" else "left")
    for row in summary["by_reason"]:
        counts.add_row(
            row["kind"],
            escape(row["field"] or ""),
            escape(row["reason"]),
            row["status"],
            f"{row['count']:,}",
        )
    console.print(counts)
    recent = Table(title="most recent")
    for column in ("id", "kind", "location", "field", "value", "reason", "status"):
        recent.add_column(column, overflow="fold")
    for row in summary["recent"]:
        recent.add_row(
            str(row["quarantine_id"]),
            row["kind"],
            escape(row["location"]),
            escape(row["field"] or ""),
            escape((row["value"] or "")[:40]),
            escape(row["reason"]),
            row["status"],
        )
    console.print(recent)
    console.print("Show one with [bold]surmesure quarantine show ID[/].")


def _print_replay(result: ReplayResult) -> None:
    table = Table(title="quarantine replay", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("records considered", f"{result.considered:,}")
    table.add_row("replayed", f"[green]{result.replayed:,}[/]")
    table.add_row("  of which already stored", f"{result.duplicate:,}")
    table.add_row("still open", f"[red]{result.still_open:,}[/]")
    table.add_row("not replayable (unreadable rows)", f"{result.not_replayable:,}")
    table.add_row("new people", f"{result.new_people:,}")
    table.add_row("merges", f"{result.merges:,}")
    console.print(table)
    if result.still_open_by_reason:
        reasons = Table(title="still open by reason")
        reasons.add_column("reason")
        reasons.add_column("records", justify="right")
        for reason, count in result.still_open_by_reason.items():
            reasons.add_row(escape(reason), f"{count:,}")
        console.print(reasons)


def register(app: typer.Typer) -> None:
    q_app = typer.Typer(help="Records refused at collection: list, show, replay.")
    app.add_typer(q_app, name="quarantine")

    @q_app.command("list")
    @user_errors
    def list_command(
        kind: str | None = typer.Option(None, "--kind", help="Only this kind."),
        status: str | None = typer.Option(
            "open", "--status", help="open or replayed; 'all' for both."
        ),
        limit: int = typer.Option(20, "--limit", help="How many recent records to show."),
        as_json: bool = JsonOption,
    ) -> None:
        """Counts by kind, field and reason, and the most recent records."""
        store = get_store()
        try:
            summary = quarantine.summary(
                store, kind=kind, status=None if status == "all" else status, limit=limit
            )
            # the recent records are listed with the values refused: personal data
            audit.record(store, audit.cli_actor(), "quarantine.list", detail={"limit": limit})
        finally:
            store.dispose()
        if as_json:
            emit_json(summary)
        else:
            _print_summary(summary)

    @q_app.command("show")
    @user_errors
    def show_command(
        quarantine_id: int = typer.Argument(..., metavar="ID", help="Quarantine id."),
        as_json: bool = JsonOption,
    ) -> None:
        """One quarantined record, whole: where it came from, why, and the record as read."""
        store = get_store()
        try:
            record = quarantine.get(store, quarantine_id)
            # the record is shown whole: a refused message is a person's data like any
            audit.record(
                store, audit.cli_actor(), "quarantine.show", detail={"quarantine_id": quarantine_id}
            )
        finally:
            store.dispose()
        if as_json:
            emit_json(record)
            return
        table = Table(title=f"quarantined record {quarantine_id}", show_header=False)
        table.add_column("field")
        table.add_column("value", overflow="fold")
        for key, value in record.items():
            if key != "payload":
                table.add_row(key, "" if value is None else escape(str(value)))
        console.print(table)
        console.print("[bold]payload[/] (the record as read):")
        console.print_json(orjson.dumps(record["payload"], default=str).decode())

    @q_app.command("replay")
    @user_errors
    def replay_command(
        run_id: int | None = typer.Option(None, "--run", help="Only records of this import run."),
        kind: str | None = typer.Option(None, "--kind", help="Only records of this kind."),
        mapping: Path | None = typer.Option(
            None, "--mapping", help="Corrected mapping (YAML); default: the run's own."
        ),
        preset: str | None = typer.Option(None, "--preset", help="A named mapping preset."),
        reason: str | None = typer.Option(
            None, "--reason", help="Only records refused for this reason (as listed)."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """Validate open records again (with a corrected mapping) and import those that pass."""
        store = get_store()
        try:
            with progress(quiet=as_json) as bar:
                task = bar.add_task("replaying quarantined records", total=1)
                result = replay(
                    store, run_id=run_id, kind=kind, mapping=mapping, preset=preset, reason=reason
                )
                bar.update(task, completed=1)
        finally:
            store.dispose()
        if as_json:
            emit_json(result.to_dict())
        else:
            _print_replay(result)
