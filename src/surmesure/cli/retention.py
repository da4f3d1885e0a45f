"""``surmesure retention run``: delete what is older than its retention limit."""

from __future__ import annotations

import typer
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.config import get_settings
from surmesure.ops.runs import recorded, removed_summary
from surmesure.protect import audit
from surmesure.protect.retention import KINDS, VIDEOS, run_retention


def register(app: typer.Typer) -> None:
    retention_app = typer.Typer(help="Retention of personal data.", no_args_is_help=True)
    app.add_typer(retention_app, name="retention")

    @retention_app.command("run")
    @user_errors
    def run_command(
        dry_run: bool = typer.Option(False, "--dry-run", help="Count, delete nothing."),
        as_json: bool = JsonOption,
    ) -> None:
        """Delete events, decisions, quarantined records and audit entries older than
        SURMESURE_RETENTION_DAYS says, the films no page shows any more and the unused video
        clips, and print what went."""
        settings = get_settings()
        store = get_store()
        try:
            if dry_run:
                result = run_retention(store, settings.retention_days, dry_run=True)
            else:
                with recorded(store, "retention", audit.cli_actor()) as run:
                    result = run_retention(store, settings.retention_days)
                    audit.record(store, audit.cli_actor(), "retention.run",
                                 detail=result.removed | result.files)  # fmt: skip
                    run.summary = removed_summary(result.removed, result.files)
        finally:
            store.dispose()
        if as_json:
            emit_json(result.to_dict())
            return
        table = Table(title="retention" + (" (dry run: nothing deleted)" if dry_run else ""))
        for column in ("kind", "kept since", "table", "rows removed"):
            table.add_column(column)

        for kind, tables in KINDS.items():
            cutoff = result.cutoffs[kind]
            for t, _ in tables:
                since = "for ever" if cutoff is None else str(cutoff)[:19]
                table.add_row(kind, since, str(t.name), f"{result.removed[str(t.name)]:,}")
        clips = result.cutoffs[VIDEOS]
        since = "for ever" if clips is None else str(clips)[:19]
        table.add_row(VIDEOS, "links expired", "video_films", f"{result.removed['video_films']:,}")
        console.print(table)
        files = result.files
        console.print(
            f"Video folder ({'would be removed' if dry_run else 'removed'}): films no page "
            f"shows {files['films']:,}, clips unused since {since} {files['clips']:,}, "
            f"leftovers of interrupted renders {files['leftovers']:,}."
        )
        console.print(
            f"Links are not stored: a page link lives at most {settings.page_link_max_days} "
            f"days, an unsubscribe link {settings.unsubscribe_link_days}; opens and clicks "
            f"are recorded {settings.tracking_token_days} days after a message."
        )
