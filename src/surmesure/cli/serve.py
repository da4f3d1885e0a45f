"""``surmesure serve``: the HTTP API (Segment-compatible collection) with uvicorn."""

from __future__ import annotations

import typer

from surmesure.api import local
from surmesure.cli.common import console, user_errors
from surmesure.config import get_settings
from surmesure.errors import InvalidInput
from surmesure.store import owner

HELP = """Serve the HTTP API: Segment-compatible collection at /v1/batch, /v1/identify,
/v1/track, /v1/page, /v1/screen, /v1/alias and /v1/group (write keys from
SURMESURE_WRITE_KEYS, HTTP Basic as the SDKs send them), decisions, people and experiments
(keys from `surmesure key create`), OpenAPI at /docs. Every call answers once its events are
committed. Refuses to start with the development secret or write key unless --dev. An embedded
DuckDB store takes one worker (one process may write the file); PostgreSQL takes several.
While it serves a DuckDB file, every other surmesure command on that file runs in the server
and prints what it would have printed."""


def register(app: typer.Typer) -> None:
    @app.command(
        "serve", help=HELP, short_help="Serve the HTTP API (Segment-compatible collection)."
    )
    @user_errors
    def serve_command(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8080, "--port", help="Port to listen on."),
        workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
        log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
        dev: bool = typer.Option(
            False, "--dev", help="Development mode: accept the development secret and key."
        ),
    ) -> None:
        import os

        import uvicorn

        from surmesure.api.app import refuse_development_defaults
        from surmesure.store import open_store

        if dev:
            os.environ["SURMESURE_DEV_MODE"] = "1"  # read again by each worker's settings
        _absolute_paths()
        get_settings.cache_clear()
        settings = get_settings()
        refuse_development_defaults(settings)
        if workers > 1 and settings.database_url.startswith("duckdb"):
            raise InvalidInput(
                f"--workers {workers} needs a server database: one process at a time may "
                "write an embedded DuckDB file.",
                hint="use --workers 1, or set SURMESURE_DATABASE_URL to PostgreSQL",
                field="--workers",
            )
        owned = owner.claim(settings.database_url, port)
        local.open_channel(None if owned is None else owned[0].token)
        backend = settings.database_url.split(":", 1)[0]
        console.print(
            f"surmesure API on [bold]http://{host}:{port}[/] ({backend}, {workers} "
            f"worker{'s' if workers > 1 else ''}); OpenAPI at /docs"
        )
        try:
            if settings.development_defaults():
                console.print(
                    "[yellow]development mode: "
                    f"{', '.join(settings.development_defaults())} hold published values[/]"
                )
            open_store(settings.database_url).dispose()  # migrate once, before workers start
            uvicorn.run(
                "surmesure.api.app:serve_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=log_level,
                access_log=False,
            )
        finally:
            local.open_channel(None)
            if owned is not None:
                owner.release(owned[1], owned[0])


def _absolute_paths() -> None:
    """The store file and the templates folder named absolutely, so that what the server opens
    later does not depend on the working directory (commands sent to it run in theirs)."""
    import os
    from pathlib import Path

    settings = get_settings()
    url = settings.database_url
    path = owner.owner_path(url)
    if path is not None:
        os.environ["SURMESURE_DATABASE_URL"] = "duckdb:///" + str(path.with_suffix(""))
    os.environ["SURMESURE_TEMPLATES_DIR"] = str(Path(settings.templates_dir).resolve())
