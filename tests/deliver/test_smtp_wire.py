"""The e-mail channel's SMTP transactions against a real server (aiosmtpd) that offers
PIPELINING, and one that does not: what arrives, and refusals as results."""

from __future__ import annotations

import socket
import threading
import time
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


def message(n: int, to: str = "alice@example.org", text: str = "") -> Message:
    text = text or f"Bonjour, message {n}."
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
    # the envelope goes to one address: a value naming more is refused, not cut to its first
    assert address_of("Ann <ann@example.org>, eve@example.org") is None
    assert address_of("ann@example.org, eve@example.org") is None
    assert address_of('"Smith, Ann" <ann@example.org>') == "ann@example.org"


def test_stuffed_data_is_what_smtplib_sends_for_the_same_lines() -> None:
    """Byte for byte, over every short mix of dots, CR, LF and text (smtplib's own pass
    after its line ending fix)."""
    import itertools
    import smtplib

    def reference(data: bytes) -> bytes:
        fixed = smtplib._fix_eols(data.decode("latin-1")).encode("latin-1")  # type: ignore[attr-defined]
        quoted: bytes = smtplib._quote_periods(fixed)  # type: ignore[attr-defined]
        return (quoted if quoted.endswith(b"\r\n") else quoted + b"\r\n") + b".\r\n"

    pieces = [b".", b"\r", b"\n", b"a", b"\r\n", b"\x00"]
    for size in range(7):
        for parts in itertools.product(pieces, repeat=size):
            data = b"".join(parts)
            assert stuffed(data) == reference(data), data


def _dropping_server(port: int, taken: list[bytes]) -> threading.Thread:
    """A server offering PIPELINING that takes the first message of each connection, then
    hangs up once the second one's data has come (before answering it); two connections."""

    def serve() -> None:
        with socket.create_server(("127.0.0.1", port)) as listener:
            for _ in range(2):
                conn, _ = listener.accept()
                with conn, conn.makefile("rb") as lines:
                    conn.sendall(b"220 test\r\n")
                    messages = 0
                    for line in lines:
                        verb = line[:4].upper()
                        if verb == b"EHLO":
                            conn.sendall(b"250-test\r\n250 PIPELINING\r\n")
                        elif verb == b"DATA":
                            conn.sendall(b"354 go\r\n")
                            data = b"".join(iter(lines.readline, b".\r\n"))
                            messages += 1
                            if messages == 2:
                                break  # hang up: the client cannot know whether it was taken
                            taken.append(data)
                            conn.sendall(b"250 taken\r\n")
                        elif verb == b"QUIT":
                            conn.sendall(b"221 bye\r\n")
                            break
                        else:
                            conn.sendall(b"250 OK\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_lost_connection_retries_only_the_messages_it_left_unanswered() -> None:
    port, taken = free_port(), list[bytes]()
    thread = _dropping_server(port, taken)
    time.sleep(0.2)
    channel = EmailChannel(EmailSettings(port=port, pool=1, timeout=5), LINKS)
    told: list[str] = []
    results = channel.send(
        [message(n) for n in range(1, 5)], on_result=lambda d: told.append(d.message_id)
    )
    channel.close()
    thread.join(5)
    # m3's envelope left with m2's data: unanswered too; m4 goes on a new connection
    assert [r.outcome for r in results] == ["sent", "retry", "retry", "sent"]
    assert sorted(told) == ["m1", "m2", "m3", "m4"]
    assert [b"message 1." in taken[0], b"message 4." in taken[1]] == [True, True]


def test_a_failing_result_callback_drops_the_connection_it_stopped(
    served: tuple[Sink, int],
) -> None:
    """on_result failing on the first message stops the batch, the next message's envelope
    maybe written already: that connection is closed, not left open nor kept for later."""
    sink, port = served
    channel = EmailChannel(EmailSettings(port=port, pool=1, timeout=5), LINKS)
    taken: list[Any] = []
    take = channel._take

    def keep() -> Any:
        taken.append(take())
        return taken[-1]

    channel._take = keep  # type: ignore[method-assign]

    def on_result(_: Any) -> None:
        raise RuntimeError("the outbox cannot be written")

    with pytest.raises(RuntimeError, match="outbox"):
        channel.send([message(n) for n in range(1, 4)], on_result=on_result)
    assert len(taken) == 1 and taken[0].smtp.sock is None  # closed
    assert channel._idle.empty()
    channel.close()
    assert len(sink.received) == 1  # the stopped batch sent nothing after it
