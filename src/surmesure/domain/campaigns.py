"""Campaign documents: whom to reach, with what, on which channels, under which guardrails.

A campaign is a small document (YAML or JSON), validated and versioned like a segment::

    name: spring_sale                  # lowercase letters, digits and _
    description: Spring sale, 20% off
    audience: {segment: lyon_loyal}    # or `audience: everyone` (the identified people)
    purpose: marketing                 # or service (not held back by marketing refusals)
    topic: offers                      # a preference-centre topic: who left it is held back
    consent: not_refused               # or granted: only people who said yes on the channel
    channels:                          # the content of each channel
      email:
        template: welcome              # a template of the library, by name ...
      sms:
        text: "{{ person.first_name }}, -20% ce week-end: {{ page_link }} STOP au 36180"
        fields: {first_name: {trait: first_name, fallback: ""}}
      web:                             # the person's page; a message printing
        text: "Vos offres de printemps"  # {{ page_link }} delivers it, a view is an open
      video:                           # the person's film on their video page; a message
        text: "Votre année avec nous"  # printing {{ video_link }} delivers it
    video:                             # what the video channel plays (see VideoSection)
      template: year_in_review.yaml    # a video template file, relative to the document
      buttons: [{label: "Mes offres", url: "https://shop.example.com/offres"}]
    policy: {order: [email, sms]}      # the first channel the person can be reached on
                                       # or {choose: best}: highest appetence x value - cost
    value: clv                         # value of a response: clv, or an offer's value (25.0)
    control: 0.1                       # share held out as a control group (receives nothing)
    holdout: 0.05                      # the global holdout share (the same people everywhere)
    window:
      quiet_hours: {start: 21, end: 8, timezone: Europe/Paris}
    caps: {per_day: 1, per_week: 3}    # messages per person across campaigns and channels
    # caps: {per_week: 3, channels: {sms: {per_week: 1}}}  # and on one channel
    costs: {email: 0.001, sms: 0.045, paper: 0.9, phone: 0.5}  # phone: per minute
    call_minutes: 3                    # expected length of a call task
    featured: {categories: [shoes], days: 14}  # who bought them lately is not chased
    cascade:                           # instead of policy: one channel per step
      - {channel: email}
      - {channel: sms, after_hours: 48, unless: [opened, clicked, converted]}
      - {channel: phone, after_hours: 72, above_cost: true}
    attribution_days: 14
    next_best_action:                  # a saved model (`uplift actions --save offer`): who
      model: offer                     # it gives "do nothing" gets no message
      features: {recency: {metric: recency_days}, zip: {trait: zip_code}}

A channel's content is either ``template`` (a template of the library, whose fields, fallbacks
and variants apply) or inline ``subject`` / ``text`` / ``html`` / ``mjml`` (a path to an MJML
file) with the ``fields`` they read: each field reads a resolved trait and falls back to a
neutral value when the trait is missing, unreliable or the person opted out of
personalization, exactly as templates do (:mod:`surmesure.decide.content`).

Pure: nothing here reads the store or the disk; references (segment, template, MJML file,
topic) are checked by :mod:`surmesure.deliver.documents`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from surmesure.domain.next_best_action import ModelFeatures
from surmesure.domain.templates import FieldSpec, Source

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
ChannelName = Literal["email", "sms", "paper", "phone", "web", "video"]
#: the channels a campaign can use, and the identifier kind that reaches a person on each
#: (``postal``: the traits of :data:`POSTAL_TRAITS`, not an identifier; ``phone`` as a channel
#: is a call task of the call centre; ``web`` is the person's page, ``page``: everyone has one;
#: ``video`` the person's video page)
REACHED_BY: dict[str, str] = {
    "email": "email",
    "sms": "phone",
    "paper": "postal",
    "phone": "phone",
    "web": "page",
    "video": "page",
}
CONSENT_CHANNEL: dict[str, str] = {"video": "web"}
"""The channel whose consent a campaign channel follows, where consent has none of its own: a
video page is a page of the web site, so a refusal of marketing on ``web`` holds it back."""
POSTAL_TRAITS = ("street", "postcode", "city")
Response = Literal["opened", "clicked", "converted"]
RESPONSES: tuple[Response, ...] = ("opened", "clicked", "converted")
CHANNEL_HINT = "use one of: " + ", ".join(REACHED_BY)


def refuse(field: str, reason: str, hint: str = "") -> PydanticCustomError:
    """A refusal from a cross-field check, carrying the field it is about (relative to the
    model that raises it) and the fix."""
    return PydanticCustomError(
        "invalid_campaign", "{reason}", {"reason": reason, "field": field, "hint": hint}
    )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentAudience(_Model):
    segment: Name


class ChannelContent(_Model):
    """What a channel carries: a library template, or inline texts with their fields."""

    template: Name | None = None
    subject: Source = ""
    text: Source = ""
    html: Source = ""
    mjml: str | None = Field(None, description="Path of an MJML file (the HTML part).")
    fields: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")], FieldSpec] = Field(
        default_factory=dict
    )
    min_reliability: Annotated[float, Field(ge=0, le=1)] = 0.6
    locale: Annotated[str, Field(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")] = "fr"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = Field(
        "EUR", description="The shop's currency, for prices printed with `money(currency)`."
    )
    sender: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ChannelContent:
        inline = bool(self.text or self.html or self.mjml or self.subject)
        if self.template is not None and inline:
            raise refuse(
                "template",
                "a template and inline texts are both given",
                "keep `template: NAME`, or remove it and keep subject/text/html/mjml",
            )
        if self.template is None and not self.text:
            raise refuse("text", "no content", "give `template: NAME`, or at least `text:`")
        if self.html and self.mjml:
            raise refuse("mjml", "html and mjml are both given", "keep one of them")
        return self


VIDEO_NAMES = ("video_link", "video_poster")
"""What a message prints of the video channel: the person's video page and its poster."""


class Button(_Model):
    """A call to action under the film: its label and where it leads (a tracked click)."""

    label: Annotated[str, Field(min_length=1, max_length=60)]
    url: Annotated[str, Field(pattern=r"^https?://[^\s<>\"']+$", max_length=1024)]


class VideoSection(_Model):
    """The campaign's film: a video template file (:mod:`surmesure.video`; a relative path is
    read from the campaign document's folder, and saved as an absolute one) and the buttons
    its page shows under the film (none: the shop's, ``SURMESURE_SHOP_URL``, if set)."""

    template: Annotated[str, Field(min_length=1, max_length=1024)]
    buttons: Annotated[list[Button], Field(max_length=4)] = Field(default_factory=list)


class Policy(_Model):
    order: Annotated[list[ChannelName], Field(min_length=1)] | None = None
    choose: Literal["first", "best"] = Field(
        "first",
        description="first: the first channel of `order` the person can be reached on; best: "
        "the one of highest expected value (appetence x value - cost)",
    )


class Featured(_Model):
    """What the campaign pushes: who bought it within ``days`` is not chased (``just_bought``)."""

    products: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    categories: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list
    )
    days: int = Field(14, ge=1, le=365)


class CascadeStep(_Model):
    """One step of a cascade: its channel, how long after the previous step was sent it
    runs, which responses to the previous steps stop it, and whether it needs an expected
    value above its cost."""

    channel: ChannelName
    after_hours: float = Field(0.0, ge=0, le=24 * 90)
    unless: list[Response] = Field(default_factory=lambda: list(RESPONSES))
    above_cost: bool = False


class QuietHours(_Model):
    """Hours when nothing leaves, in each person's time zone (the trait ``time_zone``, else
    ``timezone``)."""

    start: int = Field(ge=0, le=23, description="Hour from which nothing leaves.")
    end: int = Field(ge=0, le=23, description="Hour from which messages leave again.")
    timezone: str = "Europe/Paris"


class Window(_Model):
    quiet_hours: QuietHours | None = None


class ChannelCaps(_Model):
    """Most messages a person receives on one channel, across campaigns."""

    per_day: int | None = Field(None, ge=1)
    per_week: int | None = Field(None, ge=1)


class Caps(_Model):
    """Most messages a person receives, across campaigns and channels; ``channels``: on one
    channel, across campaigns (``{sms: {per_week: 1}}``)."""

    per_day: int | None = Field(None, ge=1)
    per_week: int | None = Field(None, ge=1)
    channels: dict[ChannelName, ChannelCaps] = Field(default_factory=dict)


class CampaignDefinition(_Model):
    name: Name
    description: str = ""
    audience: Literal["everyone"] | SegmentAudience
    purpose: Literal["marketing", "service"] = "marketing"
    topic: Name | None = None
    consent: Literal["not_refused", "granted"] = "not_refused"
    channels: Annotated[dict[ChannelName, ChannelContent], Field(min_length=1)]
    policy: Policy | None = None
    control: float = Field(0.0, ge=0, lt=1, description="Share held out as a control group.")
    holdout: float = Field(0.0, ge=0, lt=1, description="The global holdout share.")
    window: Window = Field(default_factory=Window)
    caps: Caps = Field(default_factory=Caps)
    costs: dict[ChannelName, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    """Per message: e-mail, SMS segment, letter; ``phone``: per minute of a call."""
    call_minutes: float = Field(3.0, gt=0, le=120, description="Expected length of a call.")
    value: Annotated[float, Field(ge=0)] | Literal["clv"] = Field(
        "clv", description="Value of a response: the person's CLV, or an offer's value."
    )
    featured: Featured | None = None
    cascade: Annotated[list[CascadeStep], Field(min_length=1, max_length=8)] | None = None
    attribution_days: int = Field(14, gt=0, le=365)
    next_best_action: ModelFeatures | None = Field(
        None,
        description="A saved next-best-action model: who it gives nothing gets no message "
        "(surmesure.domain.next_best_action).",
    )
    video: VideoSection | None = Field(
        None, description="The film of the video channel and its page's buttons."
    )

    @model_validator(mode="after")
    def _policy_channels(self) -> CampaignDefinition:
        if self.cascade is not None and self.policy is not None:
            raise refuse(
                "policy",
                "a cascade chooses the channel of each step",
                "remove `policy:`, or remove `cascade:`",
            )
        named = self.policy.order if self.policy is not None else None
        places = [(f"policy.order[{i}]", c) for i, c in enumerate(named or [])]
        places += [(f"cascade[{i}].channel", s.channel) for i, s in enumerate(self.cascade or [])]
        for place, channel in places:
            if channel not in self.channels:
                raise refuse(
                    place,
                    f"channel {channel!r} has no content under channels",
                    f"add `channels: {{{channel}: ...}}`, or remove it from here",
                )
        if self.video is None and self.prints_video:
            raise refuse(
                "video",
                "the campaign shows a film (channel video, or a message printing "
                "video_link or video_poster) but names no video template",
                "add `video: {template: FILE}` (a video template, relative to this document)",
            )
        if self.cascade and self.cascade[0].after_hours:
            raise refuse(
                "cascade[0].after_hours",
                "the first step has no previous step to wait for",
                "remove after_hours from the first step",
            )
        return self

    @property
    def prints_video(self) -> bool:
        """Whether the campaign shows a film: a ``video`` channel, or a message printing
        :data:`VIDEO_NAMES`."""
        texts = [c.model_dump_json() for c in self.channels.values()]
        return "video" in self.channels or any(n in t for t in texts for n in VIDEO_NAMES)

    @property
    def order(self) -> list[str]:
        """The channels in preference order (the policy's, else the cascade's, else as
        written)."""
        if self.policy is not None and self.policy.order is not None:
            return list(self.policy.order)
        if self.cascade is not None:
            return list(dict.fromkeys(s.channel for s in self.cascade))
        return list(self.channels)

    @property
    def first_order(self) -> list[str]:
        """The channels step 0 chooses from: the cascade's first, else :attr:`order`."""
        return [str(self.cascade[0].channel)] if self.cascade else self.order

    @property
    def best(self) -> bool:
        return self.policy is not None and self.policy.choose == "best"

    def cost(self, channel: str) -> float:
        """What one message costs on ``channel`` (a call: per minute x its length)."""
        per = float(self.costs.get(channel, 0.0))  # type: ignore[call-overload]
        return per * self.call_minutes if channel == "phone" else per

    @property
    def segment(self) -> str | None:
        return None if self.audience == "everyone" else self.audience.segment

    @property
    def experiment(self) -> str:
        """The experiment that records the campaign's control group."""
        return f"campaign_{self.name}"

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)
