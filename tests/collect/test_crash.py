"""Each 200 means stored, even when the server dies the hard way.

``surmesure serve`` runs as a real process on its own port; clients stream batches (or single
``/v1/track`` events, which the event writer groups into shared commits) to it; the process is
killed with SIGKILL in the middle of the stream (no shutdown, no flush, commits in flight). The
store is then opened again: every message of every acknowledged call is there.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from api_helpers import free_port, start_server

from surmesure.store import Store, open_store

KEY = "crash-write-key"
ENV = {
    "SURMESURE_WRITE_KEYS": f'{{"{KEY}": "web"}}',
    "SURMESURE_SECRET_KEY": "crash-test-secret",
    "SURMESURE_COMMIT_INTERVAL_MS": "2",
    "SURMESURE_RATE_LIMITS": '{"collect": "100000/second"}',
}
CLIENTS = 4
PER_BATCH = 40
KILL_AFTER = 40  # acknowledged batches


def test_every_acknowledged_message_survives_kill_9(store: Store, tmp_path: Path) -> None:
    def batch(worker: int, call: int) -> tuple[str, dict[str, Any], list[str]]:
        ids = [f"w{worker}-c{call}-{i}" for i in range(PER_BATCH)]
        messages = [
            {
                "type": "track",
                "messageId": message_id,
                "anonymousId": f"device-{worker}-{i % 5}",
                "event": "Product Viewed",
                "properties": {"sku": f"P{i}"},
            }
            for i, message_id in enumerate(ids)
        ]
        return "/v1/batch", {"batch": messages}, ids

    acked = _kill_mid_stream(store, tmp_path, batch, CLIENTS, KILL_AFTER * PER_BATCH)
    assert acked - _stored(store.url) == set()


def test_every_acknowledged_single_event_survives_kill_9(store: Store, tmp_path: Path) -> None:
    """Many clients each sending one event a call: the calls share commits (the writer waits
    ``SURMESURE_COMMIT_EVERY_MS`` between two), and each 200 still means stored."""

    def single(worker: int, call: int) -> tuple[str, dict[str, Any], list[str]]:
        message_id = f"s{worker}-c{call}"
        body = {"event": "Signed Up", "anonymousId": f"visitor-{worker}-{call}",
                "messageId": message_id}  # fmt: skip
        return "/v1/track", body, [message_id]

    acked = _kill_mid_stream(store, tmp_path, single, 16, 300, {"SURMESURE_COMMIT_EVERY_MS": "50"})
    assert acked - _stored(store.url) == set()


Call = Callable[[int, int], tuple[str, dict[str, Any], list[str]]]


def _kill_mid_stream(
    store: Store, tmp_path: Path, call: Call, clients: int, enough_ids: int,
    env: dict[str, str] | None = None,
) -> set[str]:  # fmt: skip
    """Start a server, stream ``call(worker, n)`` from ``clients`` threads, SIGKILL the
    server once ``enough_ids`` messages were acknowledged; the acknowledged messages."""
    url = store.url
    store.dispose()  # one process at a time may open a DuckDB file
    port = free_port()
    server = start_server(url, port, tmp_path / "server.log", {**ENV, **(env or {})})
    acknowledged: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def stream(worker: int) -> None:
        with httpx.Client(auth=(KEY, ""), timeout=5) as http:
            for n in range(10_000):
                if stop.is_set():
                    return
                path, body, ids = call(worker, n)
                try:
                    response = http.post(f"http://127.0.0.1:{port}{path}", json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(type(exc).__name__)
                    return  # the server is gone
                with lock:
                    if response.status_code == 200:
                        acknowledged.extend(ids)
                        if len(acknowledged) >= enough_ids:
                            enough.set()
                    else:
                        failures.append(str(response.status_code))

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(clients)]
    for thread in threads:
        thread.start()
    try:
        assert enough.wait(timeout=60), "the server acknowledged too few calls"
        os.kill(server.pid, signal.SIGKILL)  # mid-stream: the clients are still sending
        server.wait(timeout=10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        if server.poll() is None:
            server.kill()
    assert server.returncode == -signal.SIGKILL
    assert failures, "no call was cut off: the kill did not land mid-stream"
    assert not [f for f in failures if f.isdigit()], f"calls refused: {failures[:5]}"
    with lock:
        acked = set(acknowledged)
    assert len(acked) >= enough_ids
    return acked


def _stored(url: str) -> set[str]:
    reopened = open_store(url)
    try:
        with reopened.connect() as conn:
            return {str(r[0]) for r in conn.execute(sa.text("SELECT message_id FROM events"))}
    finally:
        reopened.dispose()
