"""Commands typed while a server owns the embedded store file run in that server.

:func:`owner_of_store` finds the live owner (:mod:`surmesure.store.owner`); :func:`forward`
sends the command line and the working directory over the server's local channel
(:mod:`surmesure.api.local`), prints what the command printed there, and exits with its code,
so a command gives the same output and exit status whether or not a server is running.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import typer

from surmesure.store.owner import Owner, current

LOCAL = ("serve", "demo", "generate")
"""Commands that always run here: ``serve`` refuses a second owner itself, ``demo`` and
``generate`` build files of their own."""
STARTING_SECONDS = 30.0
"""How long a command waits for a server that owns the store but does not listen yet."""


def owner_of_store(command: str, args: list[str]) -> Owner | None:
    """The server to send ``command`` to, if a live one owns the configured store file."""
    if command in LOCAL or "--help" in args:
        return None
    from surmesure.config import get_settings

    return current(get_settings().database_url)


def _post(owner: Owner, argv: list[str]) -> Any:
    """The server's answer to ``argv``; waits :data:`STARTING_SECONDS` for one still starting."""
    import httpx

    from surmesure.api.local import HEADER

    deadline = time.monotonic() + STARTING_SECONDS
    while True:
        try:
            return httpx.post(
                f"{owner.url}/v1/local/run",
                json={"argv": argv, "cwd": os.getcwd()},
                headers={HEADER: owner.token},
                timeout=httpx.Timeout(None, connect=5),
            )
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def forward(owner: Owner, argv: list[str]) -> None:
    """Run ``surmesure argv`` in ``owner``'s process; print its output; exit with its code."""
    import httpx

    try:
        answer = _post(owner, argv)
    except httpx.TransportError as exc:
        typer.echo(
            f"error: the server that owns the store (process {owner.pid}) does not answer on "
            f"port {owner.port} ({exc.__class__.__name__}).\n"
            "hint: wait for it to start, or stop it and run the command again",
            err=True,
        )
        raise typer.Exit(1) from None
    if answer.status_code != 200:
        message = answer.json().get("error", {}).get("message", answer.text)
        typer.echo(f"error: the server refused the command: {message}", err=True)
        raise typer.Exit(2)
    result = answer.json()
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    raise typer.Exit(int(result["exit_code"]))
