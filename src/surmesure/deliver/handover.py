"""A claimed message between the store and its channel: its draft (all its content needs,
read by :func:`surmesure.deliver.sender.gather`), rendered by :func:`compose` and handed over
by :func:`hand_over`, journaling each message its provider accepts. What a worker process
(:mod:`surmesure.deliver.workers`) runs: nothing here reads the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from surmesure.decide.content import Audience, Chosen
from surmesure.decide.personal import Personal, Recommending
from surmesure.decide.sandbox import TemplateError
from surmesure.deliver import outbox
from surmesure.deliver.channel import Channel, Delivery, Message, send_batch
from surmesure.deliver.content import ChannelTemplates

Done = tuple[list[Delivery], list[dict[str, object]]]
"""A part's deliveries, and its messages that failed before leaving (a template's error)."""


@dataclass(frozen=True)
class Draft:
    """A claimed message that may leave, with all its content needs from the store, before
    it is rendered (:func:`compose`; a worker process may render it)."""

    message_id: str
    channel: str
    to: str
    person_id: int
    audience: Audience
    personal: Personal | None
    link: str | None
    headers: dict[str, str]
    chosen: Chosen | None = None
    """The variant its template's next best action gave the person (recorded when planned)."""
    video: Mapping[str, str] | None = None
    """What its template prints of the person's video page (``video_link``, ``video_poster``)."""


def compose(
    templates: Mapping[str, ChannelTemplates],
    drafts: Sequence[Draft],
    now: datetime,
    recommending: Recommending | None = None,
) -> tuple[list[Message], list[dict[str, object]]]:
    """Each draft rendered into its message; a template that fails for a person fails that
    message (``failed``, ``template: ...``), never the batch. A render stopped by its time
    limit may only have been slowed down by a busy machine: its message is tried again later
    (``retry``, with the outbox's backoff) and fails after the last attempt.
    ``recommending``: where the products a draft left to be recommended come from (a
    worker's model and stock)."""
    ready: list[Message] = []
    failed: list[dict[str, object]] = []
    hosts = {channel: templates[channel].link_hosts for channel in {d.channel for d in drafts}}
    left = [i for i, d in enumerate(drafts) if d.personal is not None and d.personal.wanted]
    filled: dict[int, Personal] = {}
    if left:
        if recommending is None:
            raise ValueError("a draft's products were left to a worker that has no model")
        wanted = recommending.fill_many([drafts[i].personal for i in left])  # type: ignore[misc]
        filled = dict(zip(left, wanted, strict=True))
    for i, d in enumerate(drafts):
        personal = filled.get(i, d.personal)
        try:
            content = templates[d.channel].render(
                d.audience, now, personal, d.link, d.chosen, d.video
            )
        except TemplateError as exc:
            reason = f"template: {exc.message}"[:200]
            status = "retry" if exc.limit == "time" else "failed"
            failed.append({"message_id": d.message_id, "status": status, "reason": reason})
            continue
        ready.append(
            Message(
                message_id=d.message_id,
                channel=d.channel,
                to=d.to,
                text=content.text,
                subject=content.subject or None,
                html=content.html,
                sender=templates[d.channel].sender,
                headers=d.headers,
                person_id=d.person_id,
                link_hosts=hosts[d.channel],
            )
        )
    return ready, failed


def hand_over(
    channels: Mapping[str, Channel],
    messages: Sequence[Message],
    journal: outbox.Journal,
    parallel: int,
    pool: ThreadPoolExecutor | None = None,
) -> list[Delivery]:
    """Hand each channel its part of the batch at once, journaling each message the moment
    its provider accepts it (the channel pipelines the rest meanwhile); the channels of a
    batch are served side by side on ``pool``."""
    groups: dict[str, list[Message]] = {}
    for message in messages:
        groups.setdefault(message.channel, []).append(message)

    def told(delivery: Delivery) -> None:
        if delivery.outcome == "sent":
            journal.write(delivery.message_id, delivery.file)

    def one(name: str) -> list[Delivery]:
        channel = channels.get(name)
        if channel is None:
            return [
                Delivery(m.message_id, "retry", detail=f"no {name} channel") for m in groups[name]
            ]
        return send_batch(channel, groups[name], on_result=told)

    if parallel <= 1 or len(groups) <= 1 or pool is None:
        return [d for name in groups for d in one(name)]
    return [d for part in pool.map(one, list(groups)) for d in part]
