"""Sending a campaign to a real SMTP server started here: what it receives, what the outbox
records (sent, suppressed at send time with the reason, failed, retried), and that a
``campaign send`` killed with SIGKILL mid-way and run again delivers every planned message
exactly once, counted by the SMTP server and by Kannel's fake SMSC."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import yaml
from aiosmtpd.smtp import Envelope, Session
from campaign_world import HOUR, T0, add_people, document, email_of, prefer, refuse
from kannel_box import PASSWORD, USER, gate, kannel, sendsms_url
from smtp_sink import (
    Sink,
    smtp_fixture,  # noqa: F401 - the fixture smtp
    start,
)
from smtp_sink import free_port as _free_port  # noqa: F401 - other tests import it here

from surmesure.config import get_settings
from surmesure.deliver import documents, plan, service
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.protect.erase import erase_person
from surmesure.store import Store, schema

ROOT = Path(__file__).resolve().parents[2]
SMTP_PORT, KANNEL_BASE, GATE_PORT = 27120, 27130, 27140  # Kannel on 27130 .. 27133


def _channel(port: int) -> EmailChannel:
    settings = EmailSettings(port=port, sender="news@example.com", pool=2)
    return EmailChannel(settings, UnsubscribeLinks("https://shop.example", "s" * 32))


def _outbox(store: Store) -> dict[int | None, tuple[str, str | None, int]]:
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(sa.select(m.c.person_id, m.c.status, m.c.reason, m.c.attempts))
        return {r[0]: (r[1], r[2], int(r[3])) for r in rows}


def test_a_campaign_reaches_the_smtp_server_once_with_guardrails_at_send_time(
    store: Store, tmp_path: Path, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    ids = add_people(store, tmp_path, 7)
    documents.save(store, documents.parse(document(caps={"per_day": 1})), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    refuse(store, ids[3], "email", at=T0)  # after planning: checked again when it leaves
    erase_person(store, "customer_id:C4", confirmed=True)
    prefer(store, ids[7], "pause", "on", until=T0 + 240 * HOUR)
    sink.refuse = {email_of(5): "550 no such user", email_of(6): "451 greylisted"}
    channel = _channel(port)
    clock = iter([T0 + i * HOUR / 60 for i in range(100)])
    report = service.send(
        store, "spring", T0, channels={"email": channel}, folder=tmp_path, clock=lambda: next(clock)
    )
    channel.close()

    received = sink.messages()
    assert sorted(m["To"] for m in received) == [email_of(1), email_of(2)]
    first = next(m for m in received if m["To"] == email_of(1))
    assert first["Subject"] == "Hello Name1"
    assert "Dear Name1, -20% this week." in first.get_body(("plain",)).get_content()
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    rows = _outbox(store)
    assert rows[ids[1]] == ("sent", None, 1) and rows[ids[2]] == ("sent", None, 1)
    assert rows[ids[3]][:2] == ("suppressed", "opted_out_marketing")
    assert rows[ids[7]][:2] == ("suppressed", "paused")
    assert rows[None][:2] == ("suppressed", "erased")  # detached from the erased person
    assert rows[ids[5]][0] == "failed" and "550" in str(rows[ids[5]][1])
    assert rows[ids[6]][0] == "planned" and "451" in str(rows[ids[6]][1])  # retried later
    assert report.sent is not None and report.sent.counts["sent"] == 2
    status = service.status(store, "spring")
    assert status["by_status"] == {"failed": 1, "planned": 1, "sent": 2, "suppressed": 3}
    assert status["reasons"] == {
        "failed": 1,
        "suppressed:erased": 1,
        "suppressed:opted_out_marketing": 1,
        "suppressed:paused": 1,
    }

    again = service.send(store, "spring", T0, channels={"email": _channel(port)}, folder=tmp_path)
    assert len(sink.messages()) == 2  # nothing left again; the retry is not due yet
    assert again.recorded == 0


class _Stalling(Sink):
    """Accepts ``stall_after`` messages, then holds the next one unanswered until released;
    once ``dead`` (the client was killed meanwhile) it refuses what it held, as a server does
    with the data of a connection that went away."""

    def __init__(self, stall_after: int) -> None:
        super().__init__()
        self.stall_after = stall_after
        self.stalled = False
        self.released = False
        self.dead = False

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if len(self.received) >= self.stall_after and not self.released:
            self.stalled = True
            while not self.released:
                await asyncio.sleep(0.01)
            if self.dead:
                return "451 connection lost"
        return await super().handle_DATA(server, session, envelope)


def _send(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "surmesure.cli.main", "campaign", "send", "spring", "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _steady(sink: Sink, quiet: float = 0.5) -> bool:
    """Whether the server received nothing more for ``quiet`` seconds."""
    before = len(sink.received)
    time.sleep(quiet)
    return len(sink.received) == before


def _wait(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_9_mid_send_then_again_delivers_every_message_exactly_once(
    store: Store, tmp_path: Path
) -> None:
    n, texted = 60, {i for i in range(1, 61) if i % 3 == 0}  # 40 e-mails, 20 texts
    add_people(store, tmp_path, n, no_email=texted, phones=texted)
    path = tmp_path / "spring.yaml"
    channels = {"email": {"text": "x"}, "sms": {"text": "-20% this week. STOP 36180"}}
    path.write_text(yaml.safe_dump(document(channels=channels)))
    service.save_file(store, path, T0)
    port = SMTP_PORT
    sink = _Stalling(stall_after=15)
    controller = start(port, sink)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "SURMESURE_DATABASE_URL": store.url,
        "SURMESURE_EMAIL_URL": f"smtp://127.0.0.1:{port}?pool=2&sender=news@example.com",
        "SURMESURE_SMS_URL": f"kannel://{USER}:{PASSWORD}@127.0.0.1:{GATE_PORT}"
        "?sender=MAISON&concurrency=4",
        "SURMESURE_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    store.dispose()  # an embedded DuckDB file is one process's at a time
    try:
        with (
            kannel(tmp_path, KANNEL_BASE) as phone,
            gate(GATE_PORT, sendsms_url(KANNEL_BASE), pass_first=8) as smsbox,
        ):
            first = _send(env)
            _wait(lambda: sink.stalled and smsbox.stalled)  # both hold messages unanswered
            # the other connections finish what they had in hand
            _wait(lambda: _steady(sink) and smsbox.steady())
            first.send_signal(signal.SIGKILL)
            first.wait()
            sink.dead, sink.released = True, True
            smsbox.dead = True
            smsbox.release()
            accepted_before, texts_before = len(sink.received), smsbox.passed
            with store.connect() as conn:
                m = schema.messages
                sending = conn.execute(
                    sa.select(sa.func.count()).select_from(m).where(m.c.status == "sending")
                ).scalar_one()
            store.dispose()
            assert sending > 0, "the kill must land while messages are in flight"
            assert 15 <= accepted_before < n - len(texted)
            assert 8 <= texts_before < len(texted)
            time.sleep(0.5)  # what the servers held is refused
            sink.dead = smsbox.dead = False
            second = _send(env)
            out, err = second.communicate(timeout=120)
            assert second.returncode == 0, err.decode()
            phone.wait_for(len(texted))
            time.sleep(1)  # a text sent twice would reach the phone by now
            numbers = Counter(to for _, to, _, _ in phone.received())
    finally:
        controller.stop()
    report = orjson.loads(out)
    # known from the journal: not again
    assert report["settled_after_crash"]["sent"] >= accepted_before + texts_before
    ids = Counter(m["Message-ID"] for m in sink.messages())
    assert len(ids) == n - len(texted) and set(ids.values()) == {1}, ids.most_common(3)
    assert numbers == Counter({f"+3361234{i:04d}": 1 for i in texted}), numbers.most_common(3)
    status = service.status(store, "spring")
    assert status["by_status"] == {"sent": n}
    assert status["by_channel"] == {"email": {"sent": 40}, "sms": {"sent": 20}}
    get_settings.cache_clear()


def test_one_worker_at_a_time_sends_a_campaign(store: Store) -> None:
    from surmesure.deliver.outbox import _campaign_key, only_sender
    from surmesure.errors import Conflict

    with only_sender(store, "spring"):
        with pytest.raises(Conflict) as caught, only_sender(store, "spring"):
            pass  # another thread of this process
        assert "another process" in caught.value.message
        with only_sender(store, "autumn"):  # another campaign is free
            pass
        # another process (another session, on a database processes share) is refused too
        with store.backend.only_process(_campaign_key("spring")) as alone:
            assert alone is not store.backend.shared
    with only_sender(store, "spring"):  # released
        pass
