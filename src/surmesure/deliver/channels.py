"""The channels by name, and one from its settings URL.

==========  ==============================  ==========================================
type        URL                             module
==========  ==============================  ==========================================
``smtp``    ``smtp://`` or ``smtps://``     :mod:`surmesure.deliver.email`
``kannel``  ``kannel://``                   :mod:`surmesure.deliver.sms`
``paper``   ``paper:///folder``             :mod:`surmesure.deliver.paper`
``calls``   ``calls:///folder``             :mod:`surmesure.deliver.calls`
==========  ==============================  ==========================================

:func:`open_channel` builds the channel a URL names, with the secrets it needs from
:class:`~surmesure.config.Settings` (the unsubscribe links of e-mail, the signature of SMS
delivery reports).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from surmesure.config import Settings
from surmesure.deliver.calls import CallChannel, CallSettings
from surmesure.deliver.channel import Channel
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.paper import PaperChannel, PaperSettings
from surmesure.deliver.sms import SmsChannel, SmsSettings
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.errors import ConfigError

CHANNELS: dict[str, type[Channel]] = {
    "smtp": EmailChannel,
    "kannel": SmsChannel,
    "paper": PaperChannel,
    "calls": CallChannel,
}
"""Settings ``type`` -> the channel class."""
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
        links = UnsubscribeLinks.from_settings(settings, mailto)
        return EmailChannel(EmailSettings.from_url(url), links)
    if kind == "kannel":
        return SmsChannel(SmsSettings.from_url(url), secret=settings.secret_key)
    if kind == "paper":
        return PaperChannel(PaperSettings.from_url(url))
    if kind == "calls":
        return CallChannel(CallSettings.from_url(url))
    raise ConfigError(
        f"No channel is reached by a URL of scheme {urlsplit(url).scheme!r}.",
        field="channel.url",
        hint="use one of: " + ", ".join(sorted(SCHEMES)),
    )
