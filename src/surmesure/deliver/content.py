"""A campaign's content for one person, rendered when the message leaves (never stored).

Each channel's content compiles once into templates of the sandbox
(:mod:`surmesure.decide.sandbox`): a library template as it is, inline texts as a one-variant
template whose fields fall back as every template's do (:mod:`surmesure.decide.content`). An
MJML body is compiled to HTML once, with the template's tags kept (the MJML engine leaves
them as text), so a message only prints its person's values into ready HTML; the plain-text
part of an HTML-only template is read from that HTML once, as a template of its own.

The people of a batch are read as a decision reads one person
(:func:`surmesure.deliver.audiences.load_audiences`): resolved traits and the derived metrics
the fields read, each with its reliability, memberships, and neutral content when they opted
out of personalization on the channel. Their context and recommended products come from
:func:`surmesure.decide.personal.personal_batch`, the path decisions and ``surmesure render``
take one person at a time, with the batch's recommendations computed set-wise. A template may
print ``{{ page_link }}``, the person's page (:mod:`surmesure.deliver.web`): sending it
delivers the campaign's web message; and ``{{ video_link }}`` and ``{{ video_poster }}``, the
person's video page and its poster image (:mod:`surmesure.deliver.video`), which deliver the
campaign's video message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.decide.content import Audience, Chosen, CompiledTemplate, render_parts, twins
from surmesure.decide.library import library_for
from surmesure.decide.personal import DEFAULT_PRODUCTS, Personal, personal_batch
from surmesure.deliver.audiences import load_audiences
from surmesure.deliver.tracking import literal_hosts
from surmesure.domain.campaigns import VIDEO_NAMES, CampaignDefinition, ChannelContent
from surmesure.domain.templates import TemplateDefinition
from surmesure.errors import InvalidInput
from surmesure.store.engine import Store

_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")

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

    def __init__(
        self,
        campaign: str,
        channel: str,
        content: ChannelContent,
        settings: Settings,
    ) -> None:
        #: the settings the library, the fields and the links are read with (a send's worker
        #: process is handed its sending process's)
        self.settings = settings
        self.channel = channel
        self.sender = content.sender
        self.html: CompiledTemplate | None = None
        self.text: CompiledTemplate | None = None
        #: the text part is read from the HTML: blank lines its loops repeat are collapsed
        self.text_from_html = False
        self._twinned: bool | None = None
        if content.template is not None:
            compiled = library_for(self.settings).named(content.template)
            if compiled.format == "html":
                self.html = CompiledTemplate(ready_html(compiled.definition))
                self.text = text_template(self.html.definition)
                self.text_from_html = True
            else:
                self.text = compiled
            return
        base = {
            "name": f"{campaign}_{channel}"[:63],
            "placement": "campaign",
            "channel": channel,
            "locale": content.locale,
            "currency": content.currency,
            "min_reliability": content.min_reliability,
            "fields": {k: v.model_dump(exclude_none=True) for k, v in content.fields.items()},
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
                ready_html(
                    TemplateDefinition.model_validate(
                        base
                        | {
                            "format": "html",
                            "variants": [{"name": "default", "body": content.html}],
                        }
                    )
                )
            )

    @property
    def twinned(self) -> bool:
        """Whether the HTML and the text part choose their variant and fields alike (then
        chosen once a message, see :func:`~surmesure.decide.content.render_parts`)."""
        if self._twinned is None:
            both = self.html is not None and self.text is not None
            self._twinned = both and twins(self.html, self.text)  # type: ignore[arg-type]
        return self._twinned

    @property
    def compiled(self) -> tuple[CompiledTemplate, ...]:
        return tuple(t for t in (self.text, self.html) if t is not None)

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(t.needs for t in self.compiled))

    @property
    def traits(self) -> frozenset[str]:
        """The traits the fields read."""
        return frozenset().union(*(t.field_traits for t in self.compiled))

    @property
    def metrics(self) -> frozenset[str]:
        """The derived metrics the fields read."""
        return frozenset().union(*(t.field_metrics for t in self.compiled))

    @property
    def products(self) -> int:
        """How many recommended products a message needs (``0``: the texts print none)."""
        return DEFAULT_PRODUCTS if any(t.reads_products for t in self.compiled) else 0

    def audiences(
        self, conn: Connection, person_ids: Sequence[int], now: datetime
    ) -> dict[int, Audience]:
        """The people of a batch as this channel's templates see them."""
        return load_audiences(
            conn,
            person_ids,
            now,
            self.settings.trait_half_life_days,
            channel=self.channel,
            traits=self.traits,
            needs=self.needs,
            metrics=self.metrics,
        )

    def personal(
        self,
        store: Store,
        conn: Connection,
        audiences: Mapping[int, Audience],
        now: datetime,
        *,
        defer: bool = False,
    ) -> dict[int, Personal]:
        """The context and products of each person of a batch (set-wise); ``defer``: the
        products are left to the process that renders (a send's worker, see
        :class:`~surmesure.decide.personal.Recommending`)."""
        return personal_batch(
            store, conn, audiences, now, {"channel": self.channel}, k=self.products, defer=defer
        )

    @property
    def link_hosts(self) -> frozenset[str]:
        """The hosts this channel's templates write links to, and the shop's and product
        pages' (settings): the only links e-mail tracking signs."""
        settings = self.settings
        sources = [t.definition.model_dump_json() for t in (self.text, self.html) if t]
        return literal_hosts(*sources, settings.shop_url, settings.product_url)

    @property
    def prints_page_link(self) -> bool:
        """Whether a template of this channel prints ``page_link`` (the person's page)."""
        return self._prints(PAGE_LINK)

    @property
    def prints_video_link(self) -> bool:
        """Whether a template of this channel prints the person's video page or its poster
        (:data:`~surmesure.domain.campaigns.VIDEO_NAMES`)."""
        return any(self._prints(name) for name in VIDEO_NAMES)

    def _prints(self, name: str) -> bool:
        return any(name in t.definition.model_dump_json() for t in (self.text, self.html) if t)

    def render(
        self,
        audience: Audience,
        now: datetime,
        personal: Personal | None = None,
        page_link: str | None = None,
        chosen: Chosen | None = None,
        video: Mapping[str, str] | None = None,
    ) -> Content:
        """The person's content; :class:`~surmesure.decide.sandbox.TemplateError` when a
        template fails for them. ``page_link``: what ``{{ page_link }}`` prints; ``chosen``:
        the variant a next best action gave the person (:mod:`surmesure.deliver.next_best`);
        ``video``: what ``{{ video_link }}`` and ``{{ video_poster }}`` print."""
        context = None if personal is None else personal.context
        products = () if personal is None else personal.products
        links = {PAGE_LINK: page_link} if page_link is not None else {}
        links |= video or {}
        # the text part's template has the same subject: printed once, there
        parts = [(self.html, self.text is None)] if self.html is not None else []
        parts += [(self.text, True)] if self.text is not None else []
        done = render_parts(parts, audience, now=now, context=context, products=products,
                            links=links or None, chosen=chosen, twinned=self.twinned)  # fmt: skip
        html = None if self.html is None else done[0].body
        subject, explanation, text = done[-1].subject, done[-1].explanation, ""
        if self.text is not None:
            text = done[-1].body
            if self.text_from_html:
                text = _BLANK_LINES.sub("\n\n", text).strip() + "\n"
        if personal is not None:
            explanation = explanation | {"products": personal.products_note}
        return Content(subject, text, html, explanation)


def ready_html(definition: TemplateDefinition) -> TemplateDefinition:
    """``definition`` with each MJML body compiled to HTML (its template tags kept as they
    are); a body whose tags the MJML engine cannot leave alone (a tag inside an attribute it
    checks) is refused with the place and the fix."""
    from surmesure.deliver.mjml import compile_mjml

    variants = []
    for i, v in enumerate(definition.variants):
        if v.body.lstrip().startswith("<mjml"):
            try:
                body = compile_mjml(v.body, f"{definition.name}.variants.{i}.body")
            except InvalidInput as exc:
                exc.hint = (
                    "keep template tags in texts and in href/src attributes, not in the "
                    "attributes MJML checks (sizes, colours, padding)"
                )
                raise
            v = v.model_copy(update={"body": body})
        variants.append(v)
    return definition.model_copy(update={"variants": variants})


def text_template(definition: TemplateDefinition) -> CompiledTemplate:
    """The plain-text part of an HTML template, as a text template read from its HTML once."""
    from surmesure.deliver.mjml import text_of

    variants = [v.model_copy(update={"body": text_of(v.body)}) for v in definition.variants]
    blocks = [b.model_copy(update={"text": text_of(b.text)}) for b in definition.blocks]
    return CompiledTemplate(
        definition.model_copy(update={"format": "text", "variants": variants, "blocks": blocks})
    )


def templates_of(definition: CampaignDefinition, settings: Settings) -> dict[str, ChannelTemplates]:
    """The compiled content of each channel of the campaign (the template library and the
    links read with ``settings``)."""
    return {
        channel: ChannelTemplates(definition.name, channel, content, settings)
        for channel, content in definition.channels.items()
    }
