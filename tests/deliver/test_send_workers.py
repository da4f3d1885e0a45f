"""A campaign sent by two worker processes (``campaign send --workers 2``): each message
reaches the SMTP server started here once, from both workers, and the sending process
records what became of every one; after a kill -9 of the sending process, the next run waits
for the workers it left and sends every message exactly once."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.smtp import Envelope, Session
from campaign_world import T0, add_people, document, email_of
from smtp_sink import Sink, free_port, start
from test_campaign_send import ROOT, _send, _Stalling, _steady, _wait

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


def test_kill_9_of_the_sender_then_again_sends_each_message_once(
    duckdb_store: Store, tmp_path: Path
) -> None:
    store, people = duckdb_store, 60
    add_people(store, tmp_path, people)
    path = tmp_path / "spring.yaml"
    path.write_text(yaml.safe_dump(document(channels={"email": {"text": "x"}}, policy=None)))
    service.save_file(store, path, T0)
    sink, port = _Stalling(stall_after=25), free_port()
    server = start(port, sink)
    url = f"smtp://127.0.0.1:{port}?pool=2&sender=news@example.com"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "SURMESURE_DATABASE_URL": store.url,
        "SURMESURE_EMAIL_URL": url,
        "SURMESURE_OUTBOX_DIR": str(tmp_path / "outbox"),
        "SURMESURE_SEND_WORKERS": "2",
    }
    store.dispose()  # an embedded DuckDB file is one process's at a time
    try:
        first = _send(env)
        _wait(lambda: sink.stalled)  # a worker holds a message the server does not answer
        _wait(lambda: _steady(sink))
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert (tmp_path / "outbox" / "spring.workers").exists()  # workers were handing over
        # the next run waits for that worker to finish its part before it settles
        done: dict[str, Any] = {}

        def again() -> None:
            here = open_channel(url, get_settings())
            done["report"] = service.send(
                store, "spring", T0, channels={"email": here}, folder=tmp_path / "outbox"
            )
            here.close()

        second = threading.Thread(target=again)
        second.start()
        time.sleep(1)
        assert second.is_alive() and "report" not in done
        sink.dead, sink.released = True, True  # the held message is refused: sent again later
        time.sleep(0.5)
        sink.dead = False
        second.join(120)
        assert not second.is_alive()
    finally:
        server.stop()
    ids = Counter(m["Message-ID"] for m in sink.messages())
    assert len(ids) == people and set(ids.values()) == {1}, ids.most_common(3)
    assert done["report"].sent.settled["sent"] >= 25  # known from the journal: not again
    assert service.status(store, "spring")["by_status"] == {"sent": people}
