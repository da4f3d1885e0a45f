"""``surmesure serve``: the HTTP API (Segment-compatible collection) with uvicorn."""

from __future__ import annotations

import copy
from typing import Any

import typer

from surmesure.api import local
from surmesure.cli.common import console, user_errors
from surmesure.config import get_settings
from surmesure.errors import InvalidInput
from surmesure.store import owner
from surmesure.store.backends import backend_class

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
        log_level: str = typer.Option(
            "info", "--log-level", help="Log level: critical, error, warning, info or debug."
        ),
        access_log: bool = typer.Option(
            False,
            "--access-log",
            help="Log each request: method, route template, status and time (never the path's "
            "values nor the query string).",
        ),
        dev: bool = typer.Option(
            False, "--dev", help="Development mode: accept the development secret and key."
        ),
    ) -> None:
        import os

        import uvicorn

        from surmesure.api.app import refuse_development_defaults
        from surmesure.store import open_store

        options = server_options(log_level, access_log)

        if dev:
            os.environ["SURMESURE_DEV_MODE"] = "1"  # read again by each worker's settings
        _absolute_paths()
        get_settings.cache_clear()
        settings = get_settings()
        refuse_development_defaults(settings)
        if workers > 1 and not backend_class(settings.database_url).shared:
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
                **options,
            )
        finally:
            local.open_channel(None)
            if owned is not None:
                owner.release(owned[1], owned[0])


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def server_options(log_level: str, access_log: bool = False) -> dict[str, Any]:
    """What uvicorn runs the API with (``uvicorn.run``'s or ``uvicorn.Config``'s keywords).

    - No log line prints a request's path values or query string (a personal link's token,
      a gateway's ``key``): uvicorn's access log, which prints both, stays off (its lines are
      dropped even if a handler is attached to it later), and
      ``access_log`` turns on the API's own (:mod:`surmesure.api.guard`: route templates);
      uvicorn's ``trace`` level, which logs every request's whole ASGI scope, is refused.
    - uvicorn does not read ``X-Forwarded-For`` itself (by default it believes the header from
      127.0.0.1): the API reads it from ``SURMESURE_TRUSTED_PROXIES`` only
      (:mod:`surmesure.api.clients`)."""
    level = log_level.lower()
    if level not in LOG_LEVELS:
        raise InvalidInput(
            f"--log-level {log_level!r} is not one the server takes"
            + (" (trace logs every request's path and query string)." if level == "trace" else "."),
            hint=f"use one of {', '.join(LOG_LEVELS)}",
            field="--log-level",
        )
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["no_access"] = {"()": "surmesure.api.guard.NoUvicornAccess"}
    config["loggers"]["uvicorn.access"]["filters"] = ["no_access"]
    config["loggers"]["surmesure.access"] = {
        "handlers": ["default"],
        "level": "INFO" if access_log else "WARNING",
        "propagate": False,
    }
    return {
        "log_level": level,
        "log_config": config,
        "access_log": False,
        "proxy_headers": False,
    }


def _absolute_paths() -> None:
    """The store file, the templates folder and the shop's named absolutely, so that what the
    server opens later does not depend on the working directory (commands sent to it run in
    theirs)."""
    import os
    from pathlib import Path

    settings = get_settings()
    url = settings.database_url
    path = owner.owner_path(url)
    if path is not None:
        os.environ["SURMESURE_DATABASE_URL"] = "duckdb:///" + str(path.with_suffix(""))
    os.environ["SURMESURE_TEMPLATES_DIR"] = str(Path(settings.templates_dir).resolve())
    if settings.shop_dir is not None:
        os.environ["SURMESURE_SHOP_DIR"] = str(Path(settings.shop_dir).resolve())
