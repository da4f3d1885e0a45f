"""``surmesure dispatch``: run a worker, drain the outbox, see where each subscriber stands."""

from __future__ import annotations

import asyncio
import signal

import sqlalchemy as sa
import typer
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.config import get_settings
from surmesure.config_parsing import INLINE
from surmesure.dispatch import dispatcher, outbox, subscribers
from surmesure.store import schema


def register(app: typer.Typer) -> None:
    dispatch_app = typer.Typer(
        help="Changes handed on to the later stages: workers, drain, status.",
        no_args_is_help=True,
    )
    app.add_typer(dispatch_app, name="dispatch")

    @dispatch_app.command("run")
    @user_errors
    def run_command() -> None:
        """Run a worker that shares the stream's changes with every other worker (needs
        SURMESURE_DISPATCH=nats://... and PostgreSQL); stops on Ctrl-C or SIGTERM."""
        from surmesure.dispatch.broker import work

        settings = get_settings()
        if settings.dispatch == INLINE:
            console.print(
                "SURMESURE_DISPATCH is inline: the processes that store changes hand them on. "
                "Set it to nats://host:4222 to share the work between workers."
            )
            raise typer.Exit(2)
        store = get_store()

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            done = await work(
                store, settings, stop, ready=lambda: print("worker ready", flush=True)
            )
            print(
                f"worker stopped: {done.messages} messages, {done.changes} changes, "
                f"{done.effects} effects",
                flush=True,
            )

        try:
            asyncio.run(main())
        finally:
            store.dispose()

    @dispatch_app.command("drain")
    @user_errors
    def drain_command(as_json: bool = JsonOption) -> None:
        """Hand on every change not yet delivered (or, with NATS, publish it), now."""
        store = get_store()
        try:
            effects = dispatcher.settle(store, get_settings())
        finally:
            store.dispose()
        if as_json:
            emit_json(effects)
            return
        for name, count in effects.items():
            console.print(f"{name}: {count:,} effects")

    @dispatch_app.command("status")
    @user_errors
    def status_command(as_json: bool = JsonOption) -> None:
        """Each subscriber's position in the outbox, what it has left, and its failures."""
        store = get_store()
        try:
            names = subscribers.names()
            positions = dispatcher.cursors(store, names)
            with store.connect() as conn:
                last = outbox.last_id(conn)
                f, c = schema.change_failures.c, schema.changes.c
                failed = {
                    str(r[0]): int(r[1])
                    for r in conn.execute(
                        sa.select(f.subscriber, sa.func.count()).group_by(f.subscriber)
                    )
                }
                behind = {
                    n: int(
                        conn.execute(
                            sa.select(sa.func.count()).where(c.change_id > positions[n])
                        ).scalar_one()
                    )
                    for n in names
                }
        finally:
            store.dispose()
        rows = {
            n: {"position": positions[n], "behind": behind[n], "failed": failed.get(n, 0)}
            for n in names
        }
        if as_json:
            emit_json({"last_change": last, "subscribers": rows})
            return
        table = Table(title=f"dispatch (last change {last:,})")
        for column in ("subscriber", "position", "behind", "failed"):
            table.add_column(column)
        for name, row in rows.items():
            table.add_row(name, *(f"{v:,}" for v in row.values()))
        console.print(table)
