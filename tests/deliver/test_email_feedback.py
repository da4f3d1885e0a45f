"""Bounces and complaints about an e-mail we really sent (through a real SMTP server), posted
to the API as a mailbox forwarder would: a hard bounce and a delay are the message's reports; a
complaint is too, and opts the person out of e-mail marketing; a complaint quoting a link we did
not sign, another message, or a wrong key records no opt-out."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qsl

import httpx
import sqlalchemy as sa
from api_helpers import serving
from hypothesis import given, settings
from hypothesis import strategies as st
from people_rows import add_people
from smtp_sink import Sink, start

from surmesure.deliver.channel import Message
from surmesure.deliver.channels import callbacks
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.feedback import SOURCE, feedback_key, read
from surmesure.deliver.reports import status_of
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.protect.consent import refused_ids
from surmesure.store import Store, schema

SECRET = "a-test-secret-of-some-length"
PORT = 18455


def _sent(url: str) -> bytes:
    """The bytes of an e-mail to person 7, as the SMTP server received them."""
    sink = Sink()
    controller = start(PORT, sink)
    try:
        channel = EmailChannel(EmailSettings(port=PORT, pool=1), UnsubscribeLinks(url, SECRET))
        message = Message("msg-7", "email", "ana@example.org", "Bonjour", "Offres", person_id=7)
        assert channel.send([message])[0].outcome == "sent"
        channel.close()
    finally:
        controller.stop()
    return sink.received[0][2]


def _report(report_type: str, machine: str, original: bytes, original_type: str) -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example.org\r\nTo: news@example.com\r\n"
        b"Subject: report\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=" + report_type.encode() + b'; boundary="B"'
        b"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nA report.\r\n"
        b"--B\r\n" + machine.encode() + b"\r\n"
        b"--B\r\nContent-Type: " + original_type.encode() + b"\r\n\r\n" + original + b"\r\n"
        b"--B--\r\n"
    )


def _dsn(action: str, status: str, original: bytes) -> bytes:
    machine = (
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; ana@example.org\r\nAction: {action}\r\nStatus: {status}\r\n"
    )
    headers = original.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    return _report("delivery-status", machine, headers, "text/rfc822-headers")


def _arf(original: bytes) -> bytes:
    machine = (
        "Content-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: Mailbox/1.0\r\nVersion: 1\r\n"
    )
    return _report("feedback-report", machine, original, "message/rfc822")


def test_bounces_and_complaints_are_recorded(store: Store) -> None:
    add_people(store, (7, None))
    with serving(store, secret_key=SECRET) as (url, app):
        original = _sent(url)
        # posted where `campaign gateways` says, with the key it prints
        called = callbacks(app.state.settings.model_copy(update={"public_url": url}))
        endpoint, _, query = called["email_feedback"].partition("?")
        key = dict(parse_qsl(query))
        assert key == {"key": feedback_key(SECRET)}

        def post(body: bytes, params: dict[str, str] = key) -> httpx.Response:
            return httpx.post(endpoint, params=params, content=body)

        assert post(_dsn("failed", "5.1.1", original)).json() == {"outcome": "recorded"}
        with store.connect() as conn:
            assert status_of(conn, "msg-7") == "bounced"
        assert post(_dsn("delayed", "4.4.1", original)).json() == {"outcome": "recorded"}
        with store.connect() as conn:
            assert status_of(conn, "msg-7") == "delayed"
        token = original.split(b"/u/email/", 1)[1].split(b">", 1)[0]
        forged = original.replace(token, token[:-4] + b"AAAA")
        assert post(_arf(forged)).json() == {"outcome": "recorded"}
        with store.connect() as conn:
            assert refused_ids(conn, "marketing", "email", datetime(2100, 1, 1)) == set()
        assert post(b"Subject: hello\r\n\r\nnot a report\r\n").json() == {"outcome": "ignored"}
        assert post(_arf(original), {"key": "wrong"}).status_code == 404
        assert post(_arf(original)).json() == {"outcome": "opted_out"}
    with store.connect() as conn:
        assert status_of(conn, "msg-7") == "complained"
        assert refused_ids(conn, "marketing", "email", datetime(2100, 1, 1)) == {7}
        assert refused_ids(conn, "marketing", "sms", datetime(2100, 1, 1)) == set()
        sources = conn.execute(sa.select(schema.consents.c.source)).scalars().all()
    assert sources == [SOURCE]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=600), st.sampled_from(["delivery-status", "feedback-report", "x"]))
def test_any_body_reads_as_a_report_or_nothing(noise: bytes, report_type: str) -> None:
    body = (
        b"Content-Type: multipart/report; report-type=" + report_type.encode() + b'; boundary="B"'
        b"\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n" + noise + b"\r\n--B--\r\n"
    )
    for raw in (noise, body):
        found = read(raw)
        assert found is None or found.kind in ("bounced", "delayed", "complained")
