"""``surmesure generate``: write the seeded demo world as files ready to import."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, progress, user_errors
from surmesure.errors import InvalidInput
from surmesure.world import DEFAULT_END, Spec, generate

HELP = """Write a realistic retail world of --customers customers into --out: stores, products,
stock, customers from four sources (crm, shop, call centre, partner) with duplicates and
contradictions, 15 months of orders with seasonality and returns, e-mail activity, surveys,
consents, web events (Segment JSON Lines) and manifest.json (sizes, spoiled rows by reason,
and the truth to check an import against). The same seed gives byte-identical files; each
file imports with `surmesure import KIND FILE` and no mapping."""


def make_spec(customers: int, seed: int, months: int, end: str | None) -> Spec:
    """The :class:`Spec` of the options, or a clear error naming the option to fix."""
    try:
        last = date.fromisoformat(end) if end else DEFAULT_END
    except ValueError:
        raise InvalidInput(
            f"--end {end!r} is not a date.", hint="write it as YYYY-MM-DD", field="--end"
        ) from None
    try:
        return Spec(customers=customers, seed=seed, months=months, end=last)
    except ValueError as exc:
        name = "--customers" if "customers" in str(exc) else "--months"
        raise InvalidInput(f"{exc}.", hint=f"change {name}", field=name) from None


def generate_with_progress(spec: Spec, out: Path, quiet: bool) -> dict[str, Any]:
    with progress(quiet=quiet) as bar:
        task = bar.add_task(f"generating {spec.customers:,} customers", total=None)

        def on_progress(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"generating: {name} written")

        return generate(spec, out, on_progress)


def print_manifest(manifest: dict[str, Any], out: Path) -> None:
    files = Table(title=f"demo world in {out} ({manifest['seconds']:.1f} s)")
    files.add_column("file")
    files.add_column("kind")
    files.add_column("rows", justify="right")
    files.add_column("spoiled rows", justify="right")
    for entry in manifest["files"]:
        files.add_row(
            entry["file"], entry["kind"], f"{entry['rows']:,}", f"{entry['malformed_rows']:,}"
        )
    console.print(files)
    truth = Table(title="truth", show_header=False)
    truth.add_column("what")
    truth.add_column("count", justify="right")
    for key, value in manifest["truth"].items():
        if isinstance(value, int):
            truth.add_row(key.replace("_", " "), f"{value:,}")
    console.print(truth)


def register(app: typer.Typer) -> None:
    @app.command(
        "generate", help=HELP, short_help="Write a seeded retail world as files ready to import."
    )
    @user_errors
    def generate_command(
        customers: int = typer.Option(..., "--customers", help="True customers (at least 100)."),
        out: Path = typer.Option(..., "--out", help="Folder to write the files into."),
        seed: int = typer.Option(7, "--seed", help="Random seed; same seed, same files."),
        months: int = typer.Option(15, "--months", help="Months of history (12 to 60)."),
        end: str | None = typer.Option(
            None, "--end", help=f"Last day of the history (default {DEFAULT_END})."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        spec = make_spec(customers, seed, months, end)
        manifest = generate_with_progress(spec, out, quiet=as_json)
        if as_json:
            emit_json({"folder": str(out), **manifest})
        else:
            print_manifest(manifest, out)
