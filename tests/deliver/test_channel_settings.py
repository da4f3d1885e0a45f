"""A channel's settings URL with a bad value, an unknown option or a wrong scheme is refused
with the field to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from surmesure.config import Settings
from surmesure.deliver.channels import CHANNELS, open_channel
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.sms import SmsSettings
from surmesure.errors import ConfigError

BAD = [
    (EmailSettings, "smtp://host?pool=many", "email.pool", "integer"),
    (EmailSettings, "smtp://host?colour=blue", "email.colour", "Extra inputs"),
    (EmailSettings, "http://host", "email.url", "scheme"),
    (EmailSettings, "smtp://u:p@host:587", "email", "starttls"),
    (SmsSettings, "kannel://u:p@gw?max_segments=0", "sms.max_segments", "greater than"),
    (SmsSettings, "kannel://u:p@gw?colour=blue", "sms.colour", "Extra inputs"),
    (SmsSettings, "http://gw", "sms.url", "scheme"),
]


@pytest.mark.parametrize(("model", "url", "field", "words"), BAD)
def test_a_bad_setting_names_its_field(
    model: type[EmailSettings] | type[SmsSettings], url: str, field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        model.from_url(url)
    assert refused.value.field == field
    assert words in refused.value.message and refused.value.hint


def test_a_channel_is_opened_from_its_url(tmp_path: Path) -> None:
    settings = Settings(secret_key="a-test-secret-of-some-length", public_url="https://x.example")
    email = open_channel("smtp://127.0.0.1:2525?sender=news@example.com", settings)
    sms = open_channel("kannel://u:p@127.0.0.1:13013?reports_url=https://x.example", settings)
    paper = open_channel(f"paper://{tmp_path}", settings)
    calls = open_channel(f"calls://{tmp_path}", settings)
    assert (email.name, sms.name, paper.name, calls.name) == ("email", "sms", "paper", "phone")
    assert isinstance(email, EmailChannel) and email.unsubscribe is not None
    assert email.unsubscribe.url(7).startswith("https://x.example/u/email/")
    for channel in (email, sms, paper, calls):
        assert f"{type(channel).__module__}.{type(channel).__name__}" in CHANNELS.values()
        channel.close()
    with pytest.raises(ConfigError) as unknown:
        open_channel("pigeon://loft", settings)
    assert unknown.value.field == "channel.url" and "smtp" in (unknown.value.hint or "")
