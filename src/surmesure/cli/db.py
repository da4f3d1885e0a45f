"""``surmesure db``: schema migrations."""

from __future__ import annotations

import typer

from surmesure.cli.common import JsonOption, console, emit_json, user_errors
from surmesure.config import get_settings
from surmesure.store import Store
from surmesure.store.migrate import current


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Database schema: migrate to the latest revision.")
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    @user_errors
    def upgrade(as_json: bool = JsonOption) -> None:
        """Apply every pending migration to the store."""
        store = Store(get_settings().database_url)
        store.migrate()
        revision = current(store)
        if as_json:
            emit_json({"database": store.dialect, "revision": revision})
        else:
            console.print(f"[green]{store.dialect}[/] schema at revision [bold]{revision}[/]")
