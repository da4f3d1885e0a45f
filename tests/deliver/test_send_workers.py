"""A campaign sent by two worker processes (``campaign send --workers 2``): each message
reaches the SMTP server started here once, from both workers, and the sending process
records what became of every one; a run waits for the workers a killed run left."""

from __future__ import annotations

import fcntl
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import Envelope, Session
from campaign_world import T0, add_people, document, email_of
from smtp_sink import Sink, free_port, start

from surmesure.config import get_settings
from surmesure.deliver import documents, service
from surmesure.deliver.channels import open_channel
from surmesure.deliver.workers import wait_for_workers
from surmesure.store import Store


class Peers(Sink):
    """Also keeps the client end of the connection each message came over."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def test_two_workers_send_each_message_once(duckdb_store: Store, tmp_path: Path) -> None:
    store = duckdb_store
    sink, port = Peers(), free_port()
    server = start(port, sink)
    try:
        people = 30
        add_people(store, tmp_path, people)
        sink.refuse = {email_of(7): "550 no such user"}
        documents.save(store, documents.parse(document()), T0)
        # one connection per worker: the server tells the workers apart by their connection
        url = f"smtp://127.0.0.1:{port}?sender=news@example.com&pool=1"
        here = open_channel(url, get_settings())
        report = service.send(
            store,
            "spring",
            T0,
            channels={"email": here},
            folder=tmp_path,
            clock=lambda: T0,
            batch=8,
            workers=2,
            urls={"email": url},
        )
        here.close()
    finally:
        server.stop()

    received = Counter(to for m in sink.messages() for to in [m["To"]])
    assert received == Counter({email_of(i): 1 for i in range(1, people + 1) if i != 7})
    assert len(set(sink.peers)) == 2  # both workers handed messages over, none the sender
    assert all("Dear Name" in m.get_body(("plain",)).get_content() for m in sink.messages())
    assert report.sent is not None and report.sent.counts == {"sent": people - 1, "failed": 1}
    status = service.status(store, "spring")
    assert status["by_status"] == {"sent": people - 1, "failed": 1}
    assert not (tmp_path / "spring.journal").exists()  # all settled: the journal is done


def test_a_run_waits_for_the_workers_a_killed_run_left(tmp_path: Path) -> None:
    wait_for_workers(tmp_path, "spring")  # none ever ran here: at once
    # a worker of a killed run still handing its part over holds the campaign's worker lock
    held = os.open(tmp_path / "spring.workers", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_SH)
    waiting = threading.Thread(target=wait_for_workers, args=(tmp_path, "spring"))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive()  # the next run does not settle the journal yet
    os.close(held)  # the worker is done
    waiting.join(5)
    assert not waiting.is_alive()
