"""The channels by name, one from its settings URL, and those the settings configure.

==========  ==============================  ==========================================
type        URL                             module
==========  ==============================  ==========================================
``smtp``    ``smtp://`` or ``smtps://``     :mod:`surmesure.deliver.email`
``kannel``  ``kannel://``                   :mod:`surmesure.deliver.sms`
``paper``   ``paper:///folder``             :mod:`surmesure.deliver.paper`
``calls``   ``calls:///folder``             :mod:`surmesure.deliver.calls`
``web``     (always)                        :mod:`surmesure.deliver.web`
``video``   (always)                        :mod:`surmesure.deliver.video`
==========  ==============================  ==========================================

:func:`open_channel` builds the channel a URL names, with the secrets it needs from
:class:`~surmesure.config.Settings` (the unsubscribe links of e-mail, the signature of SMS
delivery reports); each module is imported only when its channel is opened (PDF layout and
MJML are heavy). :func:`configured` opens the campaign channels the settings name:
``email`` (``SURMESURE_EMAIL_URL``), ``sms`` (``SURMESURE_SMS_URL``), ``paper``
(``SURMESURE_PAPER_URL``) and ``phone``, the call centre (``SURMESURE_CALLS_URL``), plus ``web``,
the personal pages this application serves itself, and ``video``, its video pages. A channel
not configured is absent; its messages stay planned until it is. :func:`callbacks` gives the
addresses a provider calls back on this server (bounces and complaints, SMS replies and
delivery reports), each with its key.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from surmesure.config import Settings
from surmesure.deliver.channel import Channel
from surmesure.errors import ConfigError

CHANNELS: dict[str, str] = {
    "smtp": "surmesure.deliver.email.EmailChannel",
    "kannel": "surmesure.deliver.sms.SmsChannel",
    "paper": "surmesure.deliver.paper.PaperChannel",
    "calls": "surmesure.deliver.calls.CallChannel",
}
"""Settings ``type`` -> the channel class (imported when opened)."""
SCHEMES = {
    "smtp": "smtp",
    "smtps": "smtp",
    "kannel": "kannel",
    "kannel+https": "kannel",
    "paper": "paper",
    "calls": "calls",
}
"""URL scheme -> settings ``type``."""


def open_channel(url: str, settings: Settings, *, mailto: str | None = None) -> Channel:
    """The channel ``url`` names (see the module); ``mailto`` is the address that takes
    unsubscribe requests by mail, for e-mail."""
    kind = SCHEMES.get(urlsplit(url).scheme)
    if kind == "smtp":
        from surmesure.deliver.email import EmailChannel, EmailSettings
        from surmesure.deliver.unsubscribe import UnsubscribeLinks

        links = UnsubscribeLinks.from_settings(settings, mailto)
        return EmailChannel(EmailSettings.from_url(url), links)
    if kind == "kannel":
        from surmesure.deliver.sms import SmsChannel, SmsSettings

        return SmsChannel(SmsSettings.from_url(url), secret=settings.secret_key)
    if kind == "paper":
        from surmesure.deliver.paper import PaperChannel, PaperSettings

        return PaperChannel(PaperSettings.from_url(url))
    if kind == "calls":
        from surmesure.deliver.calls import CallChannel, CallSettings

        return CallChannel(CallSettings.from_url(url))
    raise ConfigError(
        f"No channel is reached by a URL of scheme {urlsplit(url).scheme!r}.",
        field="channel.url",
        hint="use one of: " + ", ".join(sorted(SCHEMES)),
    )


def urls(settings: Settings) -> dict[str, str]:
    """The settings URL of each campaign channel the settings configure."""
    found = {
        "email": settings.email_url,
        "sms": settings.sms_url,
        "paper": settings.paper_url,
        "phone": settings.calls_url,
    }
    return {channel: url for channel, url in found.items() if url}


def configured(settings: Settings) -> dict[str, Channel]:
    """A fresh channel for each one the settings configure (the caller closes them)."""
    found = {channel: open_channel(url, settings) for channel, url in urls(settings).items()}
    from surmesure.deliver.video import VideoChannel
    from surmesure.deliver.web import WebChannel

    return {**found, "web": WebChannel(), "video": VideoChannel()}


def callbacks(settings: Settings) -> dict[str, str]:
    """What the providers call back on this server, under ``SURMESURE_PUBLIC_URL`` and keyed
    by ``SURMESURE_SECRET_KEY`` (another secret key changes every key): ``email_feedback``,
    where a mailbox forwarder or a provider's webhook posts bounces and complaints;
    ``sms_inbound``, the ``get-url`` of Kannel's ``sms-service`` (replies such as STOP and
    ARRET, with Kannel's placeholders); ``sms_reports_url``, the ``reports_url`` option of
    ``SURMESURE_SMS_URL`` (each message then asks for delivery reports, signed per message)."""
    from surmesure.deliver.feedback import feedback_key
    from surmesure.deliver.sms import INBOUND_PATH, inbound_key

    base = settings.public_url.rstrip("/")
    inbound = f"key={inbound_key(settings.secret_key)}&from=%p&text=%a&charset=%C&id=%I"
    return {
        "email_feedback": f"{base}/v1/email/feedback?key={feedback_key(settings.secret_key)}",
        "sms_inbound": f"{base}{INBOUND_PATH}?{inbound}",
        "sms_reports_url": base,
    }
