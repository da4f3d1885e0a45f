"""The e-mail channel against a real SMTP server (aiosmtpd) started in the test."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import cast

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from smtp_sink import Sink, check_login, self_signed, start

from surmesure.deliver.channel import Channel, Delivery, Message, send_batch
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.unsubscribe import UnsubscribeLinks, person_of
from surmesure.errors import ConfigError

PORT = 18451
SECRET = "test-secret-for-unsubscribe-links"
LINKS = UnsubscribeLinks(
    public_url="https://shop.example.com", secret=SECRET, mailto="unsubscribe@example.com"
)
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    "<mj-text>Bonjour Alice, voici vos offres.</mj-text>"
    '<mj-button href="https://shop.example.com/o/1">Voir</mj-button>'
    "</mj-column></mj-section></mj-body></mjml>"
)


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink()
    controller = start(PORT, found)
    yield found
    controller.stop()


def message(n: int, to: str = "alice@example.org", **extra: object) -> Message:
    values: dict[str, object] = {
        "message_id": f"m{n}",
        "channel": "email",
        "to": to,
        "text": f"Bonjour Alice, message {n}.",
        "subject": "Vos offres",
        "person_id": 42,
    }
    values.update(extra)
    return Message(**values)  # type: ignore[arg-type]


def channel(**options: object) -> EmailChannel:
    values: dict[str, object] = {"port": PORT, "sender": "news@example.com", "pool": 2}
    values.update(options)
    return EmailChannel(EmailSettings.model_validate(values), LINKS)


def test_a_marketing_message_has_both_parts_and_one_click_unsubscribe(sink: Sink) -> None:
    ch = channel()
    subject = "Vos offres d'été, Alice : " + "une sélection rien que pour vous " * 3
    [delivery] = ch.send([message(1, html=MJML, subject=subject)])
    ch.close()
    assert delivery.outcome == "sent" and delivery.message_id == "m1"
    [(mail_from, rcpt, _)] = sink.received
    assert mail_from == "news@example.com" and rcpt == ["alice@example.org"]
    [mail] = sink.messages()
    assert mail["Message-ID"] == "<m1@example.com>" and mail["Subject"] == subject.strip()
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and text.get_content().strip() == "Bonjour Alice, message 1."
    assert html is not None
    body = html.get_content()
    assert "Bonjour Alice, voici vos offres." in body and "<mjml" not in body
    assert "@media" in body  # the responsive layout MJML compiled
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = (t.strip(" <>") for t in mail["List-Unsubscribe"].split(","))
    assert https.startswith("https://shop.example.com/u/email/")
    assert mailto.startswith("mailto:unsubscribe@example.com?subject=unsubscribe%20")
    token = https.rpartition("/")[2]
    assert person_of(token, "email", secret=SECRET) == 42
    assert mailto.endswith(token)


def test_the_text_part_is_read_from_the_html_when_there_is_none(sink: Sink) -> None:
    ch = channel()
    assert ch.send([message(1, text="", html=MJML)])[0].outcome == "sent"
    ch.close()
    [mail] = sink.messages()
    text = mail.get_body(("plain",))
    assert text is not None
    words = text.get_content()
    assert "Bonjour Alice, voici vos offres." in words
    assert "Voir (https://shop.example.com/o/1)" in words and "<" not in words


def test_a_message_without_a_way_to_unsubscribe_does_not_leave(sink: Sink) -> None:
    ch = channel()
    marketing = message(1, person_id=None)
    receipt = message(2, person_id=None, headers={"X-Purpose": "transactional"})
    injected = message(3, headers={"X-Campaign: x\r\nBcc": "eve@example.org"})
    first, second, third = ch.send([marketing, receipt, injected])
    ch.close()
    assert third.outcome == "failed" and "header name" in (third.detail or "")
    assert first.outcome == "failed" and "unsubscribe" in (first.detail or "")
    assert second.outcome == "sent"
    [mail] = sink.messages()
    assert mail["Message-ID"] == "<m2@example.com>"
    assert mail["List-Unsubscribe"] is None and mail["X-Purpose"] is None
    assert mail.get_content_type() == "text/plain" and "message 2" in mail.get_content()


def test_an_address_that_is_not_ascii_fails_its_message_not_the_batch(sink: Sink) -> None:
    ch = channel()
    results = ch.send([message(1, "jé@example.org"), message(2), message(3, "j@exämple.fr")])
    ch.close()
    assert [r.outcome for r in results] == ["failed", "sent", "failed"]
    assert "recipient address 'jé@example.org' is not ASCII" in (results[0].detail or "")
    assert "xn--" in (results[2].detail or "")
    assert [rcpt for _, rcpt, _ in sink.received] == [["alice@example.org"]]


def test_refusals_are_results_permanent_or_transient(sink: Sink) -> None:
    sink.refuse = {"gone@example.org": "550 5.1.1 No such user", "full@example.org": "452 Full"}
    ch = channel(pool=1)
    results = ch.send([message(1, "gone@example.org"), message(2, "full@example.org"), message(3)])
    ch.close()
    assert [r.message_id for r in results] == ["m1", "m2", "m3"]
    assert [r.outcome for r in results] == ["failed", "retry", "sent"]
    assert results[0].detail is not None and results[0].detail.startswith("550")
    assert [rcpt for _, rcpt, _ in sink.received] == [["alice@example.org"]]


def test_a_server_that_is_down_means_retry() -> None:
    ch = channel(port=18459, timeout=2)
    results = ch.send([message(1), message(2)])
    ch.close()
    assert [r.outcome for r in results] == ["retry", "retry"]


def test_a_pool_of_connections_sends_every_message_once(sink: Sink) -> None:
    ch = channel(pool=4)
    results = ch.send([message(n, f"p{n}@example.org") for n in range(200)])
    ch.close()
    assert [r.message_id for r in results] == [f"m{n}" for n in range(200)]
    assert {r.outcome for r in results} == {"sent"}
    assert sorted(rcpt[0] for _, rcpt, _ in sink.received) == sorted(
        f"p{n}@example.org" for n in range(200)
    )


def test_each_result_is_told_once_the_server_holds_the_message(sink: Sink) -> None:
    sink.refuse = {"gone@example.org": "550 5.1.1 No such user"}
    told: list[tuple[str, str, int]] = []

    def on_result(delivery: Delivery) -> None:
        held = sum(1 for _, rcpt, _ in sink.received)
        told.append((delivery.message_id, delivery.outcome, held))

    ch = channel(pool=3)
    batch = [message(n, f"p{n}@example.org") for n in range(30)] + [message(99, "gone@example.org")]
    results = ch.send(batch, on_result=on_result)
    ch.close()
    assert sorted(m for m, _, _ in told) == sorted(r.message_id for r in results)
    assert dict((m, o) for m, o, _ in told) == {r.message_id: r.outcome for r in results}
    # told the moment each was accepted, not at the end: the server held fewer than all of them
    # for the first ones told, and at least as many as were told sent
    sent_so_far = 0
    for _, outcome, held in told:
        sent_so_far += outcome == "sent"
        assert held >= sent_so_far
    assert told[0][2] < 30


def test_a_channel_without_on_result_is_told_after_its_batch() -> None:
    class Legacy:
        name = "email"

        def send(self, messages: list[Message]) -> list[Delivery]:
            return [Delivery(m.message_id, "sent") for m in messages]

        def close(self) -> None:
            pass

    told: list[str] = []
    legacy = cast(Channel, Legacy())  # a send written before on_result existed
    results = send_batch(
        legacy, [message(1), message(2)], on_result=lambda d: told.append(d.message_id)
    )
    assert told == [r.message_id for r in results] == ["m1", "m2"]


def test_the_dkim_signature_verifies_with_the_published_key(sink: Sink) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"mail2026._domainkey.example.com." else b""

    ch = channel(dkim_domain="example.com", dkim_selector="mail2026", dkim_key=pem)
    [delivery] = ch.send([message(1, html=MJML)])
    ch.close()
    assert delivery.outcome == "sent"
    [(_, _, data)] = sink.received
    assert data.startswith(b"DKIM-Signature:")
    signed = data.split(b"h=", 1)[1].split(b";", 1)[0].replace(b"\r\n", b"").replace(b" ", b"")
    assert b"list-unsubscribe" in signed.lower() and b"list-unsubscribe-post" in signed.lower()
    assert dkim.verify(data, dnsfunc=dns)
    assert not dkim.verify(data.replace(b"message 1", b"message 2"), dnsfunc=dns)


def test_starttls_and_login(tmp_path: Path) -> None:
    received = Sink()
    controller = start(
        PORT + 1,
        received,
        tls_context=self_signed(tmp_path),
        require_starttls=True,
        authenticator=check_login("crm", "s3cret"),
        auth_require_tls=True,
    )
    try:
        url = f"smtp://crm:s3cret@127.0.0.1:{PORT + 1}?starttls=1&verify_tls=0&pool=1"
        ch = EmailChannel(EmailSettings.from_url(url, sender="news@example.com"), LINKS)
        assert ch.send([message(1)])[0].outcome == "sent"
        ch.close()
        wrong = url.replace("s3cret", "nope") + "&timeout=3"
        ch = EmailChannel(EmailSettings.from_url(wrong, sender="news@example.com"), LINKS)
        [refused] = ch.send([message(2)])
        ch.close()
        assert refused.outcome == "retry"
    finally:
        controller.stop()
    assert [m["Message-ID"] for m in received.messages()] == ["<m1@example.com>"]


def test_settings_from_a_url() -> None:
    s = EmailSettings.from_url("smtps://me%40x.com:p%3Ass@mail.example.com?pool=8")
    assert (s.host, s.port, s.tls, s.username, s.password, s.pool) == (
        "mail.example.com",
        465,
        True,
        "me@x.com",
        "p:ss",
        8,
    )
    assert EmailSettings.from_url("smtp://u:p@host:587?allow_plain_auth=1").username == "u"


def test_links_expire_and_name_their_channel() -> None:
    early = UnsubscribeLinks("https://x.example", SECRET, clock=lambda: datetime(2026, 1, 1))
    token = early.url(7).rpartition("/")[2]
    assert person_of(token, "email", secret=SECRET, now=datetime(2026, 2, 1)) == 7
    from surmesure.errors import NotFound

    with pytest.raises(NotFound):
        person_of(token, "email", secret=SECRET, now=datetime(2028, 1, 2))  # 730 days
    with pytest.raises(NotFound):
        person_of(token, "sms", secret=SECRET, now=datetime(2026, 2, 1))


def test_a_dkim_key_that_is_not_rsa_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    for key in (pem, "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----"):
        settings = EmailSettings(dkim_domain="example.com", dkim_selector="s", dkim_key=key)
        with pytest.raises(ConfigError) as refused:
            EmailChannel(settings)
        assert refused.value.field == "email.dkim_key"
