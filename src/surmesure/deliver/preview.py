"""What one person would receive from a template of the library on each channel, and why.

A template is rendered for the person as a campaign's message carrying it would be
(:class:`~surmesure.deliver.content.ChannelTemplates`: the same audience read per channel,
so an opt-out of personalization on one channel gives neutral content there only, the same
context, products and fields). Each channel's result keeps the explanation of every choice
``surmesure render`` prints: the variant and why, each field used or fallen back and the
reason (``missing``, ``unreliable``, ``opted_out``, ``unknown_person``). Nothing is recorded;
the caller audits the view (a person's data is shown).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from surmesure.deliver import gsm, video, web
from surmesure.deliver.content import ChannelTemplates
from surmesure.domain.campaigns import ChannelContent
from surmesure.store.engine import Store
from surmesure.unify.profile import find_person

#: the channels a preview shows, in order
CHANNELS = ("email", "sms", "web")
#: the campaign name the preview's page link names (no message is ever recorded under it)
PREVIEW = "preview"


@dataclass(frozen=True)
class ChannelPreview:
    """One channel's content for the person: ``html`` is the document shown as the person
    sees it (the e-mail's HTML part, or its text as a page; the web page), ``segments`` the
    SMS segments the text costs (``None`` off SMS)."""

    channel: str
    subject: str
    text: str
    html: str
    variant: str
    variant_reason: str
    fields: list[dict[str, Any]]
    segments: int | None


@dataclass(frozen=True)
class TemplatePreview:
    template: str
    person_id: int
    channels: list[ChannelPreview]

    @property
    def fallbacks(self) -> int:
        """How many (channel, field) pairs fell back."""
        return sum(not f["used"] for c in self.channels for f in c.fields)


def preview(store: Store, template: str, ref: str, now: datetime) -> TemplatePreview:
    """``template`` rendered for the person ``ref`` names (an id or ``kind:value``) on each of
    :data:`CHANNELS`; :class:`~surmesure.errors.NotFound` naming ``REF`` or ``TEMPLATE``."""
    settings = store.settings
    content = ChannelContent(template=template)
    shown: list[ChannelPreview] = []
    with store.connect() as conn:
        person = find_person(conn, ref).person_id
        for channel in CHANNELS:
            templates = ChannelTemplates(PREVIEW, channel, content, settings)
            seen = templates.audiences(conn, [person], now)
            found = templates.personal(store, conn, seen, now)
            link = None
            if templates.prints_page_link:
                link = web.page_link(PREVIEW, person, now, settings)
            film = None
            if templates.prints_video_link:  # a link that opens nothing: no film is recorded
                film = video.printed(video.video_link(PREVIEW, person, now, settings))
            out = templates.render(seen[person], now, found[person], link, None, film)
            locale = str(out.explanation.get("locale") or "fr")
            variant = out.explanation["variant"]
            assert isinstance(variant, dict)
            fields = out.explanation["fields"]
            assert isinstance(fields, list)
            shown.append(
                ChannelPreview(
                    channel=channel,
                    subject=out.subject,
                    text=out.text,
                    html=document(out.subject, out.text, out.html, locale[:2]),
                    variant=str(variant["name"]),
                    variant_reason=str(variant["reason"]),
                    fields=[dict(f) for f in fields],
                    segments=gsm.segments(out.text) if channel == "sms" else None,
                )
            )
    return TemplatePreview(template, person, shown)


def document(title: str, text: str, html: str | None, lang: str) -> str:
    """A whole HTML document: ``html`` as it is when the template wrote HTML (its values
    escaped by the sandbox), else ``text`` escaped, its lines kept."""
    if html is not None and "<html" in html.lower():
        return html
    body = html if html is not None else f'<pre style="white-space:pre-wrap">{escape(text)}</pre>'
    return (
        f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>"
        '<body style="font-family:system-ui,sans-serif;margin:1rem">'
        f"{f'<h1>{escape(title)}</h1>' if title else ''}{body}</body></html>"
    )
