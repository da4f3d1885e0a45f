"""What every command shares: the store, JSON output, progress bars and error reporting."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import duckdb
import orjson
import psycopg
import sqlalchemy.exc
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from surmesure.errors import Conflict, SurmesureError
from surmesure.store import Store, open_store

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

JsonOption = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


def get_store() -> Store:
    """The configured store (``SURMESURE_DATABASE_URL``), migrated to the latest schema; a
    DuckDB file another process holds is a :class:`~surmesure.errors.Conflict` that says so."""
    try:
        return open_store()
    except sqlalchemy.exc.OperationalError as exc:
        first = str(exc.orig).split("\n", 1)[0]
        if "Could not set lock" not in first:
            raise
        holder = first.rsplit("(PID ", 1)[-1].rstrip(").") if "(PID " in first else "?"
        raise Conflict(
            f"Another process (PID {holder}) holds the store file; one process at a time may "
            "open an embedded DuckDB file.",
            hint="wait for it to finish, or stop it (a running `surmesure serve` takes "
            "commands itself: this one was not started by serve)",
            field="SURMESURE_DATABASE_URL",
        ) from None


def emit_json(payload: Any) -> None:
    """Print ``payload`` as one JSON object on stdout (dates as ISO 8601)."""
    sys.stdout.write(orjson.dumps(payload, default=str, option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")
    sys.stdout.flush()


def emit_valid(name: str, as_json: bool) -> None:
    """What ``validate`` prints for a valid document."""
    if as_json:
        emit_json({"name": name, "valid": True})
    else:
        console.print(f"[green]valid:[/] {name}")


def emit_version(name: str, version: int, changed: bool, as_json: bool, verb: str) -> None:
    """What saving a versioned document prints: the version, and whether it is new."""
    if as_json:
        emit_json({"name": name, "version": version, "changed": changed})
    elif changed:
        console.print(f"[green]{verb}[/] {name} version {version}")
    else:
        console.print(f"{name} unchanged (version {version})")


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Report a :class:`SurmesureError` as one clear line (and its hint), exit code 2; an
    error of the store as one line too (the database's own first line, never the statement,
    its parameters or a traceback), exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SurmesureError as exc:
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
            if exc.hint:
                err_console.print(f"[yellow]fix:[/] {escape(exc.hint)}")
            raise typer.Exit(code=2) from exc
        except STORE_ERRORS as exc:
            err_console.print(
                f"[bold red]error:[/] the store could not do it: {store_message(exc)}",
                highlight=False,
            )
            err_console.print(
                "[yellow]fix:[/] check SURMESURE_DATABASE_URL and that the database is up; "
                "if the command names a large definition or file, make it smaller",
                highlight=False,
            )
            raise typer.Exit(code=1) from None

    return wrapper


STORE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, duckdb.Error, psycopg.Error)


def store_message(exc: BaseException) -> str:
    """The first line of the database's own message: it names the problem, where the lines
    after it quote the statement or the row."""
    origin = getattr(exc, "orig", None) or exc
    lines = str(origin).strip().splitlines()
    return escape(lines[0][:200] if lines else type(origin).__name__)


@contextmanager
def progress(quiet: bool = False) -> Iterator[Progress]:
    """A Rich progress display for long work; silent when ``quiet`` (e.g. with ``--json``)."""
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=False,
    )
    with bar:
        yield bar
