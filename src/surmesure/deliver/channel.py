"""The one protocol every channel speaks.

A channel takes a batch of rendered messages, hands them to its provider (an SMTP server, an SMS
gateway, a printer's PDF, a call list) and says what became of each. Known failures (a refused
address, a gateway that is down) are results, never exceptions: the outbox records them, retries
what is transient and suppresses what is permanent. Each channel lives in its own module, with
its own small settings model, and is picked by name from ``CHANNELS``.

A channel also calls ``on_result`` with each message's delivery the moment it is known (from
any of its threads), so the caller journals each accepted message while the channel keeps
handing over the rest of the batch over its pool of connections (:mod:`surmesure.deliver.outbox`
explains why that is what makes a kill -9 send once).

A provider's reply kept as a delivery's ``detail`` goes through :func:`without_recipients`:
an outbox row outlives the person's erasure (detached, for the counts), so it must not keep
the address or number a refusal quotes (``550 5.1.1 <ana@example.org>: ...``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

_RECIPIENT = re.compile(
    r"[^\s<>@\"'(),;:\[\]]+@[^\s<>@\"'(),;:\[\]]+"  # an e-mail address
    r"|(?<!\w)\+?\d{8,}(?!\w)"  # a phone number as it was sent (E.164)
)


def without_recipients(text: str, limit: int = 200) -> str:
    """``text`` with every e-mail address and phone number in it replaced by ``(recipient)``,
    at most ``limit`` characters."""
    return _RECIPIENT.sub("(recipient)", text)[:limit]


Outcome = Literal["sent", "failed", "retry"]
"""``sent``: the provider accepted the message (delivery reports may follow).
``failed``: permanent (unknown address, refused content): never tried again.
``retry``: transient (connection lost, a 4xx reply): the outbox tries again later."""


@dataclass(frozen=True, slots=True)
class Message:
    """A message rendered for one person, ready to leave."""

    message_id: str
    """The outbox's id for it, stable across retries (providers see it as the Message-ID or
    the gateway's reference, so a report can be matched back)."""
    channel: str
    to: str
    """The address on this channel: an e-mail address, an E.164 number, a postal block."""
    text: str
    """The plain-text body (SMS text, e-mail text part, call script, letter body)."""
    subject: str | None = None
    html: str | None = None
    sender: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    person_id: int | None = None
    link_hosts: frozenset[str] | None = None
    """The hosts whose links may be tracked (:func:`surmesure.deliver.tracking.track`); ``None``:
    every link's."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one message."""

    message_id: str
    outcome: Outcome
    provider_id: str | None = None
    detail: str | None = None
    """Why it failed or must be retried, in the provider's words (no personal values)."""
    units: int = 1
    """What the provider bills: SMS segments, letter pages; 1 for an e-mail."""
    file: str | None = None
    """The file the message was written into (a print batch, a call list), absolute: erasing
    the person rewrites it without them (:mod:`surmesure.deliver.written`)."""


OnResult = Callable[["Delivery"], None]
"""Told each delivery as soon as the provider answered for it."""


class Channel(Protocol):
    """A way to reach people. ``send`` never raises for a message's own failure."""

    name: str

    def send(
        self, messages: Sequence[Message], on_result: OnResult | None = None
    ) -> list[Delivery]:
        """Hand the messages over; one ``Delivery`` per message, in the same order, each
        also given to ``on_result`` as soon as it is known (before ``send`` returns)."""
        ...

    def close(self) -> None:
        """Release connections and files; the channel is not used afterwards."""
        ...


def send_batch(
    channel: Channel, messages: Sequence[Message], on_result: OnResult | None = None
) -> list[Delivery]:
    """``channel.send(messages, on_result)``; a channel whose ``send`` takes no ``on_result``
    (one written before it existed) has each delivery told once the batch has returned."""
    if on_result is None:
        return channel.send(messages)
    if _streams(channel):
        return channel.send(messages, on_result=on_result)
    deliveries = channel.send(messages)
    for delivery in deliveries:
        on_result(delivery)
    return deliveries


def _streams(channel: Channel) -> bool:
    try:
        return "on_result" in inspect.signature(channel.send).parameters
    except (TypeError, ValueError):
        return False
