"""The channels the settings configure, by name: ``email`` (``SURMESURE_EMAIL_URL``) and
``sms`` (``SURMESURE_SMS_URL``). A channel not configured is absent; its messages stay
planned until it is."""

from __future__ import annotations

from surmesure.config import Settings, get_settings
from surmesure.deliver.channel import Channel


def configured(settings: Settings | None = None) -> dict[str, Channel]:
    """A fresh channel for each one the settings configure (the caller closes them)."""
    settings = settings or get_settings()
    found: dict[str, Channel] = {}
    if settings.email_url:
        from surmesure.deliver.email import EmailChannel, EmailSettings
        from surmesure.deliver.unsubscribe import UnsubscribeLinks

        links = UnsubscribeLinks(settings.public_url, settings.secret_key)
        found["email"] = EmailChannel(EmailSettings.from_url(settings.email_url), links)
    if settings.sms_url:
        from surmesure.deliver.sms import SmsChannel, SmsSettings

        found["sms"] = SmsChannel(SmsSettings.from_url(settings.sms_url), settings.secret_key)
    return found
