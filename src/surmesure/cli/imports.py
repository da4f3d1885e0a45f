"""``surmesure import KIND FILE``: file imports with validation and quarantine."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, progress, user_errors
from surmesure.collect.events import ingest_file
from surmesure.collect.files import CHUNK_ROWS
from surmesure.collect.importer import ImportResult, check_kind, import_file
from surmesure.collect.records import KINDS
from surmesure.config import get_settings
from surmesure.domain.rates import parse_rates as read_rates
from surmesure.errors import InvalidInput

HELP = f"""Import a file of KIND ({", ".join(KINDS)}): CSV, CSV.GZ, Parquet or JSON Lines;
or KIND events: Segment messages, one JSON object a line (.jsonl or .jsonl.gz), stored as the
HTTP collector stores them (--source names where they come from, default web).

The file is read and stored a chunk at a time (--chunk records a transaction), so memory
does not grow with the file; an import stopped half way can simply be run again.

Columns are matched to fields by name, or by a mapping: --mapping FILE (YAML with `columns:`
field: column, `constants:`, `timezone:`, `source:` and `rules:`) or --preset NAME (e.g.
online-retail). Refused records go to the quarantine with their reason; importing the same
file again adds nothing. A store keeps one currency: orders in another are converted with
--rate CUR=RATE (or `rates:` in the mapping), else the file is refused.
"""


def print_result(result: ImportResult) -> None:
    counts = Table(title=f"import {result.kind} (run {result.run_id})", show_header=False)
    counts.add_column("what")
    counts.add_column("count", justify="right")
    counts.add_row("rows read", f"{result.rows_read:,}")
    counts.add_row("accepted (new)", f"[green]{result.rows_accepted:,}[/]")
    if result.rows_updated:
        counts.add_row("updated (known, changed)", f"{result.rows_updated:,}")
    counts.add_row("already stored", f"{result.rows_duplicate:,}")
    counts.add_row("rejected (quarantined)", f"[red]{result.rows_quarantined:,}[/]")
    counts.add_row("new people", f"{result.new_people:,}")
    counts.add_row("merges", f"{result.merges:,}")
    for table, count in result.written.items():
        counts.add_row(f"rows written to {table}", f"{count:,}")
    counts.add_row("chunks (transactions)", f"{result.chunks:,}")
    rate = result.rows_read / result.seconds if result.seconds else 0.0
    counts.add_row("seconds", f"{result.seconds:.2f} ({rate:,.0f} rows/s)")
    console.print(counts)
    if result.quarantined_by_reason:
        reasons = Table(title="quarantined by reason")
        reasons.add_column("reason")
        reasons.add_column("records", justify="right")
        for reason, count in result.quarantined_by_reason.items():
            reasons.add_row(escape(reason), f"{count:,}")
        console.print(reasons)
        console.print("See them with [bold]surmesure quarantine list[/].")


def import_events(file: Path, source: str, as_json: bool) -> None:
    store = get_store()
    try:
        with progress(quiet=as_json) as bar:
            task = bar.add_task(f"importing {file.name}", total=None)

            def on_progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = ingest_file(store, file, source=source, on_progress=on_progress)
    finally:
        store.dispose()
    if as_json:
        emit_json({"kind": "events", "path": str(file.resolve()), "source": source, **result})
        return
    counts = Table(title=f"import events from {source}", show_header=False)
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for key in ("received", "accepted", "duplicate", "quarantined", "new_people", "merges"):
        counts.add_row(key.replace("_", " "), f"{result[key]:,}")
    counts.add_row("seconds", f"{result['seconds']:.2f}")
    console.print(counts)


def parse_rates(texts: list[str]) -> dict[str, float]:
    """``["GBP=1.17"]`` -> ``{"GBP": 1.17}`` (:func:`surmesure.domain.rates.parse_rates`)."""
    try:
        return read_rates(texts)
    except ValueError as exc:
        raise InvalidInput(
            f"--rate {exc}.",
            field="rate",
            hint="e.g. --rate GBP=1.17: one pound is worth 1.17 of the store's currency",
        ) from None


def register(app: typer.Typer) -> None:
    @app.command(
        "import",
        help=HELP,
        short_help="Import a file of customers, orders, products, ... or events.",
    )
    @user_errors
    def import_command(
        kind: str = typer.Argument(..., help=f"One of: {', '.join(KINDS)}, events."),
        file: Path = typer.Argument(..., help="The file to import."),
        mapping: Path | None = typer.Option(None, "--mapping", help="Column mapping (YAML)."),
        preset: str | None = typer.Option(None, "--preset", help="A named mapping preset."),
        source: str | None = typer.Option(
            None, "--source", help="Source name of the records (default: the mapping's)."
        ),
        rate: list[str] = typer.Option(
            [],
            "--rate",
            help="Orders: CUR=RATE, one unit of CUR in the store's currency (repeat per currency).",
        ),
        chunk: int = typer.Option(
            CHUNK_ROWS, "--chunk", min=1, help="Records read, stored and committed at a time."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        rates = parse_rates(rate)
        if kind == "events":
            import_events(file, source or "web", as_json)
            return
        check_kind(kind)
        store = get_store()
        try:
            with progress(quiet=as_json) as bar:
                task = bar.add_task(f"importing {file.name} (% of the file)", total=None)

                def on_progress(done: int, total: int) -> None:
                    bar.update(task, completed=round(100 * done / max(total, 1)), total=100)

                result = import_file(
                    store,
                    kind,
                    file,
                    mapping=mapping,
                    preset=preset,
                    source=source,
                    on_progress=on_progress,
                    settings=get_settings(),
                    rates=rates,
                    chunk_rows=chunk,
                )
        finally:
            store.dispose()
        if as_json:
            emit_json(result.to_dict())
        else:
            print_result(result)
