"""A campaign's content for one person, rendered when the message leaves (never stored).

Each channel's content compiles once into templates of the sandbox
(:mod:`surmesure.decide.sandbox`): a library template as it is, inline texts as a one-variant
template whose fields fall back as every template's do (:mod:`surmesure.decide.content`). The
person is read as a decision reads them (:func:`surmesure.decide.audience.load_audience`):
resolved traits with their reliability, memberships, and neutral content when they opted out
of personalization on the channel. A template may print ``{{ page_link }}``, the person's
page (:mod:`surmesure.deliver.web`): sending it delivers the campaign's web message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from surmesure.config import get_settings
from surmesure.decide.content import Audience, CompiledTemplate, render
from surmesure.decide.library import library_for
from surmesure.deliver.audiences import load_audiences
from surmesure.domain.campaigns import CampaignDefinition, ChannelContent
from surmesure.domain.templates import TemplateDefinition

PAGE_LINK = "page_link"
"""The name a template prints the person's page link with (the web channel)."""


@dataclass(frozen=True)
class Content:
    """One person's message on one channel, and why it reads as it does."""

    subject: str
    text: str
    html: str | None
    explanation: dict[str, object]


class ChannelTemplates:
    """The compiled content of one channel of a campaign."""

    def __init__(self, campaign: str, channel: str, content: ChannelContent) -> None:
        self.channel = channel
        self.sender = content.sender
        self.html: CompiledTemplate | None = None
        if content.template is not None:
            compiled = library_for().named(content.template)
            if compiled.format == "html":
                self.html, self.text = compiled, None
            else:
                self.text = compiled
            return
        base = {
            "name": f"{campaign}_{channel}"[:63],
            "placement": "campaign",
            "channel": channel,
            "locale": content.locale,
            "min_reliability": content.min_reliability,
            "fields": {k: v.model_dump() for k, v in content.fields.items()},
        }
        self.text = CompiledTemplate(
            TemplateDefinition.model_validate(
                base
                | {
                    "format": "text",
                    "variants": [
                        {"name": "default", "subject": content.subject, "body": content.text}
                    ],
                }
            )
        )
        if content.html:
            self.html = CompiledTemplate(
                TemplateDefinition.model_validate(
                    base
                    | {"format": "html", "variants": [{"name": "default", "body": content.html}]}
                )
            )

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(t.needs for t in (self.text, self.html) if t is not None))

    @property
    def traits(self) -> frozenset[str]:
        """The traits the fields read."""
        return frozenset(
            spec.trait
            for t in (self.text, self.html)
            if t is not None
            for spec in t.definition.fields.values()
        )

    def audiences(
        self, conn: Connection, person_ids: Sequence[int], now: datetime
    ) -> dict[int, Audience]:
        """The people of a batch as this channel's templates see them."""
        return load_audiences(
            conn,
            person_ids,
            now,
            get_settings().trait_half_life_days,
            channel=self.channel,
            traits=self.traits,
            needs=self.needs,
        )

    @property
    def prints_page_link(self) -> bool:
        """Whether a template of this channel prints ``page_link`` (the person's page)."""
        return any(PAGE_LINK in t.definition.model_dump_json() for t in (self.text, self.html) if t)

    def render(self, audience: Audience, now: datetime, page_link: str | None = None) -> Content:
        """The person's content; :class:`~surmesure.decide.sandbox.TemplateError` when a
        template fails for them. ``page_link``: what ``{{ page_link }}`` prints."""
        subject, text, html, explanation = "", "", None, {}
        links = {PAGE_LINK: page_link} if page_link is not None else None
        if self.html is not None:
            done = render(self.html, audience, now=now, links=links)
            subject, html, explanation = done.subject, done.body, done.explanation
        if self.text is not None:
            done = render(self.text, audience, now=now, links=links)
            subject, text, explanation = done.subject or subject, done.body, done.explanation
        elif html is not None:
            text = text_part(html)
        return Content(subject, text, html, explanation)


def text_part(html: str) -> str:
    """The plain-text part read from an HTML (or MJML) body."""
    from surmesure.deliver.mjml import compile_mjml, text_of

    if html.lstrip().startswith("<mjml"):
        html = compile_mjml(html)
    return str(text_of(html))


def templates_of(definition: CampaignDefinition) -> dict[str, ChannelTemplates]:
    """The compiled content of each channel of the campaign."""
    return {
        channel: ChannelTemplates(definition.name, channel, content)
        for channel, content in definition.channels.items()
    }
