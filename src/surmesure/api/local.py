"""The local channel: ``POST /v1/local/run`` runs a ``surmesure`` command in the server that
owns an embedded store file, for the commands typed while it serves
(:mod:`surmesure.store.owner`, :mod:`surmesure.cli.remote`).

Only the token ``surmesure serve`` wrote in the owner file opens it, and only from the loopback
address; anything else is a 401, whatever API key it carries. Commands run one at a time, in the
caller's working directory (so relative file names mean what they meant to the caller), with the
server's settings; what they print is captured and answered with the exit code. ``serve`` and
``demo`` are refused: one would start a second server, the other builds a new store elsewhere.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import os
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from surmesure.api.body import validated_body
from surmesure.errors import InvalidInput, Unauthorized

router = APIRouter(include_in_schema=False)
HEADER = "x-surmesure-local"
REFUSED = ("serve", "demo")
LOOPBACK = ("127.0.0.1", "::1")
_token: str | None = None
_one_at_a_time = threading.Lock()
MAX_RUN_BYTES = 1_048_576
"""The body is read after the token check, and no further than this."""


def open_channel(token: str | None) -> None:
    """Accept ``token`` on the local channel of this process's server (``None``: closed)."""
    global _token
    _token = token


def require_local(request: Request) -> None:
    """The caller holds this server's local token and calls from the loopback address."""
    given = request.headers.get(HEADER, "")
    client = request.client.host if request.client is not None else ""
    if _token is None or client not in LOOPBACK or not hmac.compare_digest(given, _token):
        raise Unauthorized(
            "The local channel takes the token of the server's owner file only.",
            hint="run the surmesure command on the machine that serves, as the same user",
        )


require_local.scope = "local"  # type: ignore[attr-defined]


class Run(BaseModel):
    model_config = ConfigDict(extra="forbid")

    argv: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=200)]
    cwd: Annotated[str, Field(min_length=1, max_length=4096)]


def run_command(argv: list[str], cwd: str) -> dict[str, Any]:
    """Run ``surmesure argv`` here, in ``cwd``; its output and exit code."""
    from typer.main import get_command

    from surmesure.cli.main import app

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with _one_at_a_time:
        before = os.getcwd()
        try:
            os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    get_command(app).main(args=argv, prog_name="surmesure")
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.chdir(before)
    return {"exit_code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


@router.post("/v1/local/run", summary="Run a command in the server that owns the store")
async def run(
    request: Request,
    _: None = Depends(require_local),
    body: Run = Depends(validated_body(Run, MAX_RUN_BYTES)),
) -> dict[str, Any]:
    command = next((a for a in body.argv if not a.startswith("-")), "")
    if command in REFUSED:
        raise InvalidInput(
            f"`surmesure {command}` cannot run inside the server that owns the store.",
            field="argv",
            hint="stop the server first",
        )
    if not os.path.isabs(body.cwd) or not os.path.isdir(body.cwd):
        raise InvalidInput(
            "cwd must be an existing absolute directory.", field="cwd", hint="send os.getcwd()"
        )
    return await run_in_threadpool(run_command, body.argv, body.cwd)
