"""Each 200 means stored, even when the server dies the hard way.

``surmesure serve`` runs as a real process on its own port; clients stream batches to it; the
process is killed with SIGKILL in the middle of the stream (no shutdown, no flush, commits in
flight). The store is then opened again: every message of every acknowledged batch is there.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import sqlalchemy as sa
from api_helpers import free_port, start_server

from surmesure.store import Store, open_store

KEY = "crash-write-key"
ENV = {
    "SURMESURE_WRITE_KEYS": f'{{"{KEY}": "web"}}',
    "SURMESURE_SECRET_KEY": "crash-test-secret",
    "SURMESURE_COMMIT_INTERVAL_MS": "2",
}
CLIENTS = 4
PER_BATCH = 40
KILL_AFTER = 40  # acknowledged batches


def test_every_acknowledged_message_survives_kill_9(store: Store, tmp_path: Path) -> None:
    url = store.url
    store.dispose()  # one process at a time may open a DuckDB file
    port = free_port()
    server = start_server(url, port, tmp_path / "server.log", ENV)
    acknowledged: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def stream(worker: int) -> None:
        with httpx.Client(auth=(KEY, ""), timeout=5) as http:
            for call in range(10_000):
                if stop.is_set():
                    return
                ids = [f"w{worker}-c{call}-{i}" for i in range(PER_BATCH)]
                batch = [
                    {
                        "type": "track",
                        "messageId": message_id,
                        "anonymousId": f"device-{worker}-{i % 5}",
                        "event": "Product Viewed",
                        "properties": {"sku": f"P{i}"},
                    }
                    for i, message_id in enumerate(ids)
                ]
                try:
                    response = http.post(f"http://127.0.0.1:{port}/v1/batch", json={"batch": batch})
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(type(exc).__name__)
                    return  # the server is gone
                with lock:
                    if response.status_code == 200:
                        acknowledged.extend(ids)
                        if len(acknowledged) >= KILL_AFTER * PER_BATCH:
                            enough.set()
                    else:
                        failures.append(str(response.status_code))

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        assert enough.wait(timeout=60), "the server acknowledged too few batches"
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
    with lock:
        acked = set(acknowledged)
    reopened = open_store(url)
    try:
        with reopened.connect() as conn:
            stored = {str(r[0]) for r in conn.execute(sa.text("SELECT message_id FROM events"))}
    finally:
        reopened.dispose()
    assert len(acked) >= KILL_AFTER * PER_BATCH
    assert acked - stored == set()
