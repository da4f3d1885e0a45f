"""``surmesure key create|list|revoke|identity|reseal`` and ``surmesure audit list``.

A key is shown once, when it is created: it is stored only as a hash. Every key change is
written to the audit log; ``audit list`` reads it back, newest first.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.config import get_settings
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import audit
from surmesure.protect.keys import create_key, list_keys, revoke_key
from surmesure.protect.reseal import reseal_traits
from surmesure.unify.profile import find_person
from surmesure.web.identity import key_identity_secret

SCOPE_HELP = (
    "A scope (repeat for several): collect (send events; the only scope a public web page "
    "may hold), decide (decisions, page links), read (personal data), calls (a call "
    "centre's call tasks), web (a shop's pages fill their placements for their own visitor; "
    "with collect alone, and --origin), admin (everything)."
)


def _when(value: Any) -> str:
    return "" if value is None else str(value)[:19]


def register(app: typer.Typer) -> None:
    key_app = typer.Typer(
        help="API keys: create, list, revoke; reseal stored traits.", no_args_is_help=True
    )
    app.add_typer(key_app, name="key")
    audit_app = typer.Typer(help="The audit log of personal-data reads and changes.")
    app.add_typer(audit_app, name="audit")

    @key_app.command("create")
    @user_errors
    def create_command(
        name: str = typer.Argument(..., help="A name saying who holds the key."),
        scope: list[str] = typer.Option(..., "--scope", help=SCOPE_HELP),
        source: str | None = typer.Option(
            None,
            "--source",
            help="Source name of the events the key sends (default: web for a web key, else api).",
        ),
        origin: list[str] = typer.Option(
            [],
            "--origin",
            help="A page origin a web key is used from, e.g. https://shop.example (repeat for "
            "several); the browser of any other page is refused.",
        ),
        replace: bool = typer.Option(
            False, "--replace", help="Revoke a key of the same name and take its name."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """Create a key; it is printed once and stored only as a hash. A web key also prints
        the identity secret the shop's server signs its logged-in users with."""
        store = get_store()
        try:
            secret, row = create_key(
                store,
                name,
                scope,
                source=source or ("web" if "web" in scope else "api"),
                origins=origin,
                replace=replace,
            )
            audit.record(
                store,
                audit.cli_actor(),
                "key.create",
                detail={
                    "key_id": row["key_id"],
                    "name": name,
                    "scopes": row["scopes"],
                    "origins": row["origins"],
                },
            )
        finally:
            store.dispose()
        identity = (
            key_identity_secret(get_settings().secret_key, row["key_id"])
            if "web" in row["scopes"]
            else None
        )
        if as_json:
            emit_json({**row, "key": secret, **({"identity_secret": identity} if identity else {})})
            return
        console.print(f"key [bold]{name}[/] ({', '.join(row['scopes'])}), id {row['key_id']}:")
        console.print(secret, markup=False, highlight=False)
        console.print("[yellow]Copy it now: it is stored only as a hash and shown once.[/]")
        if identity is not None:
            console.print(
                "Pages of "
                + (", ".join(row["origins"]) or "no origin yet (add --origin)")
                + " may use it. The shop's server signs its logged-in users with this identity "
                "secret (keep it on the server; surmesure.web.identity.sign_user):"
            )
            console.print(identity, markup=False, highlight=False)

    @key_app.command("list")
    @user_errors
    def list_command(as_json: bool = JsonOption) -> None:
        """Every key: name, scopes, created, last used, revoked (never the key itself)."""
        store = get_store()
        try:
            rows = list_keys(store)
        finally:
            store.dispose()
        if as_json:
            emit_json({"keys": rows})
            return
        table = Table(title="API keys")
        for column in ("id", "name", "scopes", "source", "origins", "created", "last used",
                       "revoked"):  # fmt: skip
            table.add_column(column)
        for r in rows:
            table.add_row(
                r["key_id"],
                r["name"],
                ",".join(r["scopes"]),
                r["source"],
                " ".join(r["origins"]),
                _when(r["created_at"]),
                _when(r["last_used_at"]),
                _when(r["revoked_at"]),
            )
        console.print(table)

    @key_app.command("revoke")
    @user_errors
    def revoke_command(
        key: str = typer.Argument(..., help="The key's name or id."),
        as_json: bool = JsonOption,
    ) -> None:
        """Revoke a key; a running server refuses it within SURMESURE_KEY_REFRESH_SECONDS."""
        store = get_store()
        try:
            row = revoke_key(store, key)
            audit.record(
                store,
                audit.cli_actor(),
                "key.revoke",
                detail={"key_id": row["key_id"], "name": row["name"]},
            )
        finally:
            store.dispose()
        if as_json:
            emit_json(row)
        else:
            console.print(f"key [bold]{row['name']}[/] revoked at {_when(row['revoked_at'])}")

    @key_app.command("identity")
    @user_errors
    def identity_command(
        key: str = typer.Argument(..., help="The web key's name or id."),
        as_json: bool = JsonOption,
    ) -> None:
        """Print the identity secret with which the shop's server signs its logged-in users
        for a web key (derived from SURMESURE_SECRET_KEY and the key's id)."""
        store = get_store()
        try:
            found = [
                r
                for r in list_keys(store)
                if key in (r["name"], r["key_id"]) and r["revoked_at"] is None
            ]
            if not found:
                raise NotFound(
                    f"No key in force is named {key!r}.", hint="see surmesure key list",
                    field="key",
                )  # fmt: skip
            if "web" not in found[0]["scopes"]:
                raise InvalidInput(
                    f"The key {key!r} has no web scope: it signs no user.",
                    hint="name a key created with --scope web",
                    field="key",
                )
            row = found[0]
            audit.record(
                store,
                audit.cli_actor(),
                "key.identity",
                detail={"key_id": row["key_id"], "name": row["name"]},
            )
        finally:
            store.dispose()
        secret = key_identity_secret(get_settings().secret_key, row["key_id"])
        if as_json:
            emit_json({"key_id": row["key_id"], "name": row["name"], "identity_secret": secret})
        else:
            console.print(secret, markup=False, highlight=False)

    @key_app.command("reseal")
    @user_errors
    def reseal_command(as_json: bool = JsonOption) -> None:
        """Seal or open stored trait values after SURMESURE_SEALED_TRAITS changed, and name
        the saved segments that compare a trait now sealed."""
        store = get_store()
        try:
            result = reseal_traits(store)
            audit.record(
                store,
                audit.cli_actor(),
                "key.reseal",
                detail={"sealed": result.sealed, "opened": result.opened},
            )
        finally:
            store.dispose()
        if as_json:
            emit_json(result.to_dict())
            return
        console.print(f"trait values sealed: {result.sealed:,}; opened: {result.opened:,}")
        for found in result.segments:
            console.print(
                f"[yellow]segment {escape(found['segment'])}[/]: {escape(found['place'])} "
                f"compares sealed trait {escape(found['trait'])!s} with `{found['op']}`; "
                "it can match nobody: test `exists`/`missing` or another trait"
            )

    @audit_app.command("list")
    @user_errors
    def audit_command(
        person: str | None = typer.Option(
            None, "--person", help="Only acts about this person (id or kind:value)."
        ),
        actor: str | None = typer.Option(None, "--actor", help="Only this actor (key:NAME)."),
        action: str | None = typer.Option(None, "--action", help="Only this action."),
        limit: int = typer.Option(100, "--limit", min=1, max=100_000, help="At most this many."),
        as_json: bool = JsonOption,
    ) -> None:
        """Who read or changed what, and when; newest first."""
        store = get_store()
        try:
            person_id = int(person) if person is not None and person.isdigit() else None
            if person is not None and person_id is None:  # an erased person is known by id
                with store.connect() as conn:
                    person_id = find_person(conn, person).person_id
            rows = audit.entries(
                store, person_id=person_id, actor=actor, action=action, limit=limit
            )
        finally:
            store.dispose()
        if as_json:
            emit_json({"entries": rows})
            return
        table = Table(title="audit log")
        for column in ("at", "actor", "action", "person", "detail"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(
                _when(r["occurred_at"]),
                r["actor"],
                r["action"],
                "" if r["person_id"] is None else str(r["person_id"]),
                "" if not r["detail"] else escape(str(r["detail"])),
            )
        console.print(table)
