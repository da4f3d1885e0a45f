"""A real uvicorn server on loopback, serving the API on a given store, for collection tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from surmesure.api.app import create_app
from surmesure.config import Settings
from surmesure.protect.keys import create_key
from surmesure.store import Store

WRITE_KEY = "test-write-key"
TEST_SECRET = "test-secret-not-the-development-one"


def free_port() -> int:
    """A free port: one the system gives, or of the range ``SURMESURE_TEST_PORTS``
    (``27400-27499``) on a machine whose people share out ranges."""
    low, _, high = os.environ.get("SURMESURE_TEST_PORTS", "0-0").partition("-")
    for port in range(int(low), int(high) + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port in SURMESURE_TEST_PORTS={low}-{high}")


def settings_for(store: Store, **overrides: Any) -> Settings:
    """Production settings (no development secret or key) on ``store``."""
    overrides.setdefault("secret_key", os.environ.get("SURMESURE_SECRET_KEY", TEST_SECRET))
    overrides.setdefault("write_keys", {WRITE_KEY: "web"})
    return Settings(database_url=store.url, **overrides)


def server_key(store: Store, *scopes: str) -> str:
    """A stored key with ``scopes``, named after them (an earlier one of that name revoked)."""
    return create_key(store, "test-" + "-".join(scopes), list(scopes), replace=True)[0]


@contextmanager
def serving(
    store: Store,
    prepare: Callable[[FastAPI], None] | None = None,
    *,
    freeze: bool = False,
    server: dict[str, Any] | None = None,
    **overrides: Any,
) -> Iterator[tuple[str, FastAPI]]:
    """``(base URL, app)`` of a server running in a thread until the block ends; ``prepare``
    sets up the app before it starts; ``freeze`` as :func:`create_app` takes it; ``server``:
    uvicorn's options (``surmesure serve``'s: :func:`surmesure.cli.serve.server_options`)."""
    app = create_app(settings_for(store, **overrides), store, freeze=freeze)
    if prepare is not None:
        prepare(app)
    port = free_port()
    options = {"log_level": "warning", **(server or {})}
    running = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **options)
    )
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        running.should_exit = True
        thread.join(timeout=20)


def gigabyte_answer(base: str, path: str, content_type: str, start: bytes) -> bytes:
    """The first bytes the server at ``base`` answers to a POST on ``path`` that announces a
    gigabyte and sends only ``start``: what a server that waits for the body never answers
    within 5 s."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: " + content_type.encode() + b"\r\n"
            b"Content-Length: 1000000000\r\n\r\n" + start
        )
        try:
            return sock.recv(200)
        except TimeoutError:
            return b"(no answer: the server waits for the gigabyte)"


def start_server(
    url: str, port: int, log: Path, env: dict[str, str], *options: str
) -> subprocess.Popen[bytes]:
    """``surmesure serve`` on ``url`` and ``port`` as a process of its own, with ``env`` added
    to this one's, once it answers ``/health``; its output goes to ``log``."""
    env = {**os.environ, "SURMESURE_DATABASE_URL": url, **env}
    command = [sys.executable, "-m", "surmesure.cli.main", "serve", "--port", str(port), *options]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")
