"""Which process owns an embedded store file, and how another process reaches it.

One process at a time may open a DuckDB file. While ``surmesure serve`` holds one, it writes
``<file>.owner`` (mode 0600, only the user who runs the server may read it): its process id, the
port of its local channel and a fresh random token. Any other ``surmesure`` command on the same
file finds the owner there and sends its work to the server (:mod:`surmesure.cli.remote`), which
runs it in its own process and answers with the output and the exit code. The token is made per
start, never stored elsewhere, and only opens the local channel (``POST /v1/local/run``, from the
loopback address): no API key, however wide its scopes, opens it. The file goes when the server
stops; a file left by a server that died names a process that no longer runs, and is ignored.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson

from surmesure.errors import Conflict


@dataclass(frozen=True, slots=True)
class Owner:
    """The server that holds a store file: its process, local channel port and token."""

    pid: int
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def owner_path(database_url: str) -> Path | None:
    """``<file>.owner`` of an embedded store file; ``None`` for a server database or memory."""
    if not database_url.startswith("duckdb") or ":///" not in database_url:
        return None
    path = database_url.split(":///", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser().resolve().with_name(Path(path).name + ".owner")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as another user
        return True
    return True


def current(database_url: str) -> Owner | None:
    """The live server that owns the store file of ``database_url``, if one does."""
    path = owner_path(database_url)
    if path is None:
        return None
    try:
        found = orjson.loads(path.read_bytes())
        owner = Owner(int(found["pid"]), int(found["port"]), str(found["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if owner.pid == os.getpid() or not _alive(owner.pid):
        return None
    return owner


def claim(database_url: str, port: int) -> tuple[Owner, Path] | None:
    """Record this process as the owner of the store file (``None`` when the store is not an
    embedded file); :class:`~surmesure.errors.Conflict` when a live server already owns it."""
    path = owner_path(database_url)
    if path is None:
        return None
    other = current(database_url)
    if other is not None:
        raise Conflict(
            f"Another server (process {other.pid}, port {other.port}) already owns "
            f"{path.with_suffix('').name}.",
            hint="stop it first, or serve another database file",
            field="SURMESURE_DATABASE_URL",
        )
    owner = Owner(os.getpid(), port, secrets.token_urlsafe(32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a server that died
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps({"pid": owner.pid, "port": owner.port, "token": owner.token}))
    return owner, path


def release(path: Path, owner: Owner) -> None:
    """Remove the owner file if it is still this owner's."""
    with contextlib.suppress(OSError, ValueError):
        if orjson.loads(path.read_bytes()).get("token") == owner.token:
            path.unlink()
