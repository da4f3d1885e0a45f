"""The e-mail channel's SMTP transactions against a real server (aiosmtpd) that offers
PIPELINING, and one that does not: what arrives, and refusals as results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope, Session
from smtp_sink import Sink, free_port, start

from surmesure.deliver.channel import Message
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.smtp_wire import address_of, stuffed
from surmesure.deliver.unsubscribe import UnsubscribeLinks

LINKS = UnsubscribeLinks(public_url="https://shop.example.com", secret="s" * 32)


class PipeliningSink(Sink):
    """A sink that offers PIPELINING (as Postfix does) and counts the transactions reset."""

    resets = 0

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RSET(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.resets += 1
        return "250 OK"


@pytest.fixture(params=[True, False], ids=["pipelining", "lock-step"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Sink, int]]:
    sink = PipeliningSink() if request.param else Sink()
    port = free_port()
    controller = start(port, sink)
    yield sink, port
    controller.stop()


def message(n: int, to: str = "alice@example.org", text: str = "Bonjour.") -> Message:
    return Message(f"m{n}", "email", to, text, subject="Vos offres", person_id=n)


def test_refusals_do_not_spoil_the_next_message_on_the_connection(
    served: tuple[Sink, int],
) -> None:
    sink, port = served
    sink.refuse = {"gone@example.org": "550 5.1.1 No such user", "full@example.org": "452 Full"}
    channel = EmailChannel(
        EmailSettings(port=port, pool=1, sender="News <news@example.com>"), LINKS
    )
    text = ".un point en tête\n..et deux\n.\nfin"
    batch = [
        message(1, "gone@example.org"),
        message(2, text=text),
        message(3, "full@example.org"),
        message(4, "bob@example.org"),
        message(5, "eve@example.org>\r\nRCPT TO:<mallory@example.org"),
    ]
    results = channel.send(batch)
    channel.close()
    assert [r.outcome for r in results] == ["failed", "sent", "retry", "sent", "failed"]
    assert results[0].detail == "550 5.1.1 No such user"
    assert results[2].detail == "452 Full"
    assert "not valid" in (results[4].detail or "")
    assert [(f, r) for f, r, _ in sink.received] == [
        ("news@example.com", ["alice@example.org"]),
        ("news@example.com", ["bob@example.org"]),
    ]
    first = sink.messages()[0].get_body(("plain",))
    assert first is not None and first.get_content().replace("\r\n", "\n") == text + "\n"
    if isinstance(sink, PipeliningSink):
        assert sink.resets == 2  # after each refused recipient, before the next MAIL


def test_stuffed_data_ends_lines_in_crlf_and_doubles_leading_dots() -> None:
    assert stuffed(b".a\r\nb\r\n.c") == b"..a\r\nb\r\n..c\r\n.\r\n"
    assert stuffed(b"a\nb\r.c\r\n") == b"a\r\nb\r\n..c\r\n.\r\n"


def test_an_address_is_read_bare_or_from_its_name() -> None:
    assert address_of("news@example.com") == "news@example.com"
    assert address_of("Maison Été <news@example.com>") == "news@example.com"
    assert address_of("a@b.c>\r\nDATA") is None
    assert address_of("") is None and address_of("<>") is None
