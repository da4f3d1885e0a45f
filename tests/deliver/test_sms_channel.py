"""The SMS channel through a real Kannel (bearerbox + smsbox) to its fake SMSC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kannel_box import PASSWORD, USER, Phone, kannel, sendsms_url

from surmesure.deliver.channel import Message
from surmesure.deliver.sms import SmsChannel, SmsSettings
from surmesure.errors import ConfigError

BASE = 18500


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Phone]:
    with kannel(tmp_path, BASE) as found:
        yield found


def sms(n: int, text: str, to: str = "+33612345678") -> Message:
    return Message(f"s{n}", "sms", to, text, person_id=n)


def channel(**options: object) -> SmsChannel:
    values: dict[str, object] = {
        "url": sendsms_url(BASE),
        "username": USER,
        "password": PASSWORD,
        "sender": "MAISON",
    }
    values.update(options)
    return SmsChannel(SmsSettings.model_validate(values))


def test_texts_reach_the_phone_in_their_encoding_and_segments(phone: Phone) -> None:
    short = "Bonjour Alice, -20% sur tout : 5€ {code} [ÉTÉ]"
    long_gsm = "Offre: " + "a" * 200
    emoji = "Merci 😀 à bientôt"
    long_ucs2 = "Ça ✓ " * 20
    ch = channel()
    results = ch.send([sms(1, short), sms(2, long_gsm), sms(3, emoji), sms(4, long_ucs2)])
    ch.close()
    assert [r.outcome for r in results] == ["sent"] * 4
    assert [r.units for r in results] == [1, 2, 1, 2]
    phone.wait_for(6)
    got = phone.received()
    assert len(got) == 6  # what the operator bills: the segments counted
    assert {(frm, to) for frm, to, _, _ in got} == {("MAISON", "+33612345678")}
    payloads = phone.payloads()
    assert short.encode() in payloads  # GSM-7 in one message, extension characters included
    assert emoji.encode("utf-16-be") in payloads  # UCS-2 in one message
    parts = [p for p in payloads if p.startswith(b"a") or p.startswith(b"Offre")]
    assert sorted(len(p) for p in parts) == [54, 153]  # 207 septets: 153 + 54
    halves = [p for p in payloads if p.startswith(b"\x00\xc7") or p.startswith(b"\x00 ")]
    assert sorted(len(p) // 2 for p in halves) == [33, 67]
    whole = b"".join(sorted(halves, key=len, reverse=True)).decode("utf-16-be")
    assert whole == long_ucs2


def test_refusals_and_outages_are_results(phone: Phone) -> None:
    ch = channel(max_segments=2)
    too_long = sms(1, "a" * 400)
    no_number = sms(2, "Bonjour", to="")
    fine = sms(3, "Bonjour")
    results = ch.send([too_long, no_number, fine])
    ch.close()
    assert [r.outcome for r in results] == ["failed", "failed", "sent"]
    assert "3 segments" in (results[0].detail or "")
    assert (results[1].detail or "").startswith("40")
    wrong = channel(password="not-it")
    [refused] = wrong.send([sms(4, "Bonjour")])
    wrong.close()
    assert refused.outcome == "retry" and (refused.detail or "").startswith("403")
    phone.wait_for(2, seconds=2)
    assert phone.payloads() == [b"Bonjour"]


def test_a_gateway_that_is_down_means_retry() -> None:
    ch = channel(url="http://127.0.0.1:18509/cgi-bin/sendsms", timeout=2)
    assert [r.outcome for r in ch.send([sms(1, "x"), sms(2, "y")])] == ["retry", "retry"]
    ch.close()


def test_settings_from_a_url() -> None:
    s = SmsSettings.from_url("kannel://crm:p%40ss@10.0.0.5:13013?sender=MAISON&max_segments=3")
    assert (s.url, s.username, s.password, s.sender, s.max_segments) == (
        "http://10.0.0.5:13013/cgi-bin/sendsms",
        "crm",
        "p@ss",
        "MAISON",
        3,
    )
    assert SmsSettings.from_url("kannel+https://u:p@gw").url == "https://gw:13013/cgi-bin/sendsms"
    with pytest.raises(ConfigError) as unsigned:
        SmsChannel(SmsSettings.from_url("kannel://u:p@gw?reports_url=https://crm.example.com"))
    assert unsigned.value.field == "sms.reports_url"
