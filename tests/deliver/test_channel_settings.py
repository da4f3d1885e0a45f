"""A channel's settings URL with a bad value, an unknown option or a wrong scheme is refused
with the field to fix."""

from __future__ import annotations

import pytest

from surmesure.deliver.email import EmailSettings
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
