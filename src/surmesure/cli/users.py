"""``surmesure user create|list|disable``: who may sign in to the console.

A password is asked twice without echo (or read from ``SURMESURE_USER_PASSWORD`` for scripts)
and kept only as an argon2id hash. Every change is written to the audit log.
"""

from __future__ import annotations

import typer
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.protect import audit
from surmesure.protect.users import LANGUAGES, ROLES, User, create_user, disable_user, list_users

ROLE_HELP = (
    "viewer (aggregates: sizes, KPIs, results), analyst (also people's data), marketer (also "
    "segments, content, campaigns), admin (also users, keys, exports, erasure)."
)


def _row(user: User) -> dict[str, object]:
    return {
        "user_id": user.user_id,
        "email": user.email,
        "role": user.role,
        "language": user.language,
        "created_at": user.created_at.isoformat(timespec="seconds"),
        "last_login_at": user.last_login_at.isoformat(timespec="seconds")
        if user.last_login_at
        else None,
        "disabled_at": user.disabled_at.isoformat(timespec="seconds") if user.disabled_at else None,
    }


def register(app: typer.Typer) -> None:
    user_app = typer.Typer(help="Console users: create, list, disable.", no_args_is_help=True)
    app.add_typer(user_app, name="user")

    @user_app.command("create")
    @user_errors
    def create_command(
        email: str = typer.Argument(..., help="The user's e-mail address (the sign-in name)."),
        role: str = typer.Option(..., "--role", help=f"One of {', '.join(ROLES)}: {ROLE_HELP}"),
        password: str = typer.Option(
            ...,
            "--password",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SURMESURE_USER_PASSWORD",
            help="At least 12 characters; asked without echo when not given.",
        ),
        language: str = typer.Option(
            "en", "--language", help=f"The console's language: {', '.join(LANGUAGES)}."
        ),
        replace: bool = typer.Option(
            False, "--replace", help="Reset an existing user's password, role and language."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """Create a console user (or reset one with --replace)."""
        store = get_store()
        try:
            user = create_user(store, email, password, role, language=language, replace=replace)
            audit.record(
                store,
                audit.cli_actor(),
                "user.create",
                detail={"user_id": user.user_id, "role": user.role, "replace": replace},
            )
        finally:
            store.dispose()
        if as_json:
            emit_json(_row(user))
            return
        console.print(f"user [bold]{user.email}[/] ({user.role}) can sign in at /console/")

    @user_app.command("list")
    @user_errors
    def list_command(as_json: bool = JsonOption) -> None:
        """Every console user: role, language, created, last sign-in, disabled."""
        store = get_store()
        try:
            users = list_users(store)
        finally:
            store.dispose()
        if as_json:
            emit_json({"users": [_row(u) for u in users]})
            return
        table = Table(title="Console users")
        for column in ("e-mail", "role", "language", "created", "last sign-in", "disabled"):
            table.add_column(column)
        for u in users:
            r = _row(u)
            table.add_row(
                u.email,
                u.role,
                u.language,
                str(r["created_at"]),
                str(r["last_login_at"] or ""),
                str(r["disabled_at"] or ""),
            )
        console.print(table)

    @user_app.command("disable")
    @user_errors
    def disable_command(
        email: str = typer.Argument(..., help="The user's e-mail address."),
        as_json: bool = JsonOption,
    ) -> None:
        """Disable a user: its sessions end at once and it can no longer sign in."""
        store = get_store()
        try:
            user = disable_user(store, email)
            audit.record(store, audit.cli_actor(), "user.disable", detail={"user_id": user.user_id})
        finally:
            store.dispose()
        if as_json:
            emit_json(_row(user))
            return
        console.print(f"user [bold]{user.email}[/] is disabled; its sessions have ended")
